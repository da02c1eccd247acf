/* The population engine's inner loops in C (built and loaded by compiled.py): for a slice of models
 * of one MLP shape, each model's minibatch gradients (with Adam, an epoch of steps), its evaluation
 * and its data order.
 *
 * One model at a time, its activations feature-major: a layer's units are rows of BLOCK points, so
 * every inner loop runs over a block's points (a constant trip count, vectorised fully), and a
 * block's activations stay in L1/L2. A minibatch of m points is ceil(m / BLOCK) blocks, the last
 * padded with copies of its first point, their gradient set to zero.
 *
 * The maths is net.py's (and autograd's), on net.py's storage layout (the Layout compiled.py reads off
 * its views). Compiled with REAL float and REAL double. Portable C: the vector extensions gcc and
 * clang share, and exp, tanh and erf of its own (the same numbers in every build). */

#include <tgmath.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef REAL real;

#define MAX_LAYERS 16
#define BLOCK 64
/* A block's row as NV vectors of 64 bytes (AVX-512's width; split elsewhere), so that a row being
 * summed into stays in registers. The type allows any alignment. */
typedef real vec __attribute__((vector_size(64), aligned(sizeof(real))));
#define NV (BLOCK * (int)sizeof(real) / 64)
#define ROW(p) ((vec *)(p))
/* Whether REAL is double, and its lanes in a vec, as preprocessor numbers */
#define float_IS_DOUBLE 0
#define double_IS_DOUBLE 1
#define PASTE(a, b) a##b
#define OF_REAL(r, what) PASTE(r, what)
#define IS_DOUBLE OF_REAL(REAL, _IS_DOUBLE)
#define LANES (IS_DOUBLE ? 8 : 16)
/* a vec's lanes as signed integers of its width: what comparisons give, and its bits */
typedef __typeof__((vec){} < 0) lanes;

enum { RELU, TANH, SIGMOID, LEAKY_RELU, GELU, IDENTITY }; /* compiled.ACTIVATIONS */

typedef struct {
    int64_t n_layers;
    int64_t sizes[MAX_LAYERS + 1];
    /* layer l of a model's row p: W[j][q] = p[w_at + j * w_row + q * w_col], b[j] = p[b_at + j * b_step] */
    int64_t w_at[MAX_LAYERS], w_row[MAX_LAYERS], w_col[MAX_LAYERS], b_at[MAX_LAYERS], b_step[MAX_LAYERS];
    /* the hidden layer that layer l computes (its output A[l + 1]): its activation, and its dropout while
     * training (rng.py's spec): a unit is dropped where the top 53 bits of its draw are below
     * drop_below[l] (0: no dropout), a kept one scaled by keep_scale[l] = 1 / (1 - rate) */
    int64_t activation[MAX_LAYERS];
    uint64_t drop_below[MAX_LAYERS];
    double keep_scale[MAX_LAYERS];
} Layout;

/* Per layer l: pre-activations Z[l] and outputs A[l] (A[0]: the inputs; Z[L]: the logits), and two
 * rows of gradients w.r.t. pre-activations, D, used alternately going down. With dropout, F[l] holds
 * the activation's output, M[l] its mask (keep_scale or 0), A[l] their product. */
typedef struct { real *Z[MAX_LAYERS + 1], *A[MAX_LAYERS + 1], *F[MAX_LAYERS + 1], *M[MAX_LAYERS + 1], *D[2], *margin,
                 *sums; } Buffers;

/* A model's dropout draws for one minibatch: each hidden layer's key (rng.py's layer_key), and the
 * block's first point and its number of points */
typedef struct { uint64_t key[MAX_LAYERS]; int64_t first; int mb; } Draws;

/* SplitMix64's output function: trainlab's counter-based generator (rng.py) */
static uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

enum { DATA_ORDER = 0, DROPOUT = 1 }; /* rng.DATA_ORDER, rng.DROPOUT */

static int has_dropout(const Layout *net) {
    for (int l = 0; l < net->n_layers - 1; l++)
        if (net->drop_below[l]) return 1;
    return 0;
}

static int64_t widest(const Layout *net) {
    int64_t width = 0;
    for (int l = 0; l <= net->n_layers; l++) width = net->sizes[l] > width ? net->sizes[l] : width;
    return width;
}

int64_t work_size(const Layout *net) {
    int64_t rows = 2 * widest(net);
    for (int l = 0; l <= net->n_layers; l++) rows += 4 * net->sizes[l];
    return rows * BLOCK + 2 * widest(net) + 1;
}

static Buffers buffers(const Layout *net, real *work) {
    Buffers b;
    for (int l = 0; l <= net->n_layers; l++) {
        b.Z[l] = work, work += net->sizes[l] * BLOCK;
        b.A[l] = work, work += net->sizes[l] * BLOCK;
        b.F[l] = work, work += net->sizes[l] * BLOCK;
        b.M[l] = work, work += net->sizes[l] * BLOCK;
    }
    b.D[0] = work;
    b.D[1] = work + widest(net) * BLOCK;
    b.margin = work + 2 * widest(net) * BLOCK;
    b.sums = b.margin + widest(net) + 1;
    return b;
}

/* exp and tanh on a vec: a few ulp from the correctly rounded values, NaN and the infinities' limits
 * kept (a diverging model is found by its NaN or infinite loss). exp(x) = 2^n exp(r), n = round(x /
 * ln 2) (read off the last bits of x / ln 2 + SHIFT), r = x - n ln 2 (ln 2 in two parts, so that n
 * times the first is exact), exp(r) by its Taylor polynomial to the degree where the next term is
 * below an ulp; 2^n built from n's bits as two factors 2^(n/2), so that subnormal or the largest
 * results round once. */
#if IS_DOUBLE
#define MANTISSA 52
#define BIAS 1023
#define SHIFT 0x1.8p52
#define LN2_HI 0x1.62e42p-1            /* ln 2's first 21 bits: n LN2_HI is exact */
#define LN2_LO 0x1.fdf473de6af28p-22  /* ln 2 - LN2_HI */
#define EXP_MAX 710.0                 /* exp overflows above ~709.78, is 0 below ~-745.13 */
#define EXP_MIN -746.0
#define TANH_ONE 22.0                 /* tanh(x) rounds to 1 from here */
#define DEGREE 13
#else
#define MANTISSA 23
#define BIAS 127
#define SHIFT 0x1.8p23f
#define LN2_HI 0x1.62ep-1f             /* 13 bits */
#define LN2_LO 0x1.0bfbe8p-15f
#define EXP_MAX 89.0f
#define EXP_MIN -104.0f
#define TANH_ONE 10.0f
#define DEGREE 7
#endif

/* x where the lanes of `take` are set, else y */
static inline vec where(lanes take, vec x, vec y) { return (vec)((take & (lanes)x) | (~take & (lanes)y)); }

#define SIGN_BIT ((lanes)(-(vec){}))  /* the bits of -0 */
static inline vec magnitude(vec x) { return (vec)((lanes)x & ~SIGN_BIT); }

/* n = round(x / ln 2) as a real and as an integer, and r = x - n ln 2 */
static inline vec reduce(vec x, vec *n, lanes *ni) {
    const vec shifted = x * (real)M_LOG2E + SHIFT;
    *n = shifted - SHIFT;
    *ni = (lanes)shifted - (lanes)((vec){} + SHIFT);
    return x - *n * LN2_HI - *n * LN2_LO;
}

/* exp(r) - 1 - r for |r| <= ln(2)/2: r^2 (1/2! + r (1/3! + ... + r / DEGREE!)) */
static inline vec expm1_rest(vec r) {
    static const double inverse_factorial[] = {1 / 2., 1 / 6., 1 / 24., 1 / 120., 1 / 720., 1 / 5040., 1 / 40320.,
                                               1 / 362880., 1 / 3628800., 1 / 39916800., 1 / 479001600.,
                                               1 / 6227020800.};  /* 1/k!, k = 2 ... 13 */
    vec p = (vec){} + (real)inverse_factorial[DEGREE - 2];
    for (int k = DEGREE - 3; k >= 0; k--) p = p * r + (real)inverse_factorial[k];
    return p * r * r;
}

static inline vec power_of_two(lanes n) { return (vec)((n + BIAS) << MANTISSA); }

static inline vec vexp(vec x) {
    x = where(x > EXP_MAX, (vec){} + EXP_MAX, where(x < EXP_MIN, (vec){} + EXP_MIN, x));
    vec n;
    lanes ni;
    const vec r = reduce(x, &n, &ni);
    const lanes half = ni >> 1;
    return (1 + (r + expm1_rest(r))) * power_of_two(half) * power_of_two(ni - half);
}

/* tanh(x) = e / (e + 2) for e = exp(2|x|) - 1 = 2^n (r + rest) + 2^n - 1 (exact for n = 0, so
 * accurate near 0), with x's sign */
static inline vec vtanh(vec x) {
    vec y = 2 * magnitude(x);
    y = where(y > 2 * TANH_ONE, (vec){} + 2 * TANH_ONE, y);
    vec n;
    lanes ni;
    const vec r = reduce(y, &n, &ni);
    const vec scale = power_of_two(ni);
    const vec e = scale * (r + expm1_rest(r)) + (scale - 1);
    return (vec)((lanes)(e / (e + 2)) | ((lanes)x & SIGN_BIT));
}

static inline vec polynomial(vec x, const double *c, int degree) {
    vec p = (vec){} + (real)c[0];
    for (int k = 1; k <= degree; k++) p = p * x + (real)c[k];
    return p;
}

#if IS_DOUBLE
/* erf on a vec, double: Cephes' rational approximations (Moshier 1984-2000; within 4e-16):
 * x T(x^2) / U(x^2) for |x| < 1, else 1 - exp(-x^2) P(|x|) / Q(|x|), with x's sign. erf(x) rounds
 * to +-1 beyond |x| = 6: the tail stops there (and keeps infinities finite). */
static inline vec verf(vec x) {
    static const double T[] = {9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
                               7.00332514112805075473E3, 5.55923013010394962768E4};
    static const double U[] = {1, 3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
                               2.26290000613890934246E4, 4.92673942608635921086E4};
    static const double P[] = {2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
                               4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
                               9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2};
    static const double Q[] = {1, 1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
                               9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
                               1.65666309194161350182E3, 5.57535340817727675546E2};
    const lanes near = magnitude(x) < 1;
    const vec x2 = x * x, a = where(magnitude(x) > 6, (vec){} + 6, magnitude(x)), q = polynomial(a, Q, 8);
    /* one division for both: x T / U near 0, (Q - exp(-a^2) P) / Q farther */
    const vec erf = where(near, x * polynomial(x2, T, 4), q - vexp(-a * a) * polynomial(a, P, 8)) /
                    where(near, polynomial(x2, U, 5), q);
    return (vec)((lanes)erf | (~near & (lanes)x & SIGN_BIT));
}
#else
/* erf on a vec, float: x N(x^2) for |x| < 1, else 1 - exp(-x^2) F(1/|x|), with x's sign; N and F
 * least-squares fits on Chebyshev nodes against mpmath (erf(x)/x in x^2 on [0, 1], degree 6;
 * erfc(a) exp(a^2) in 1/a on [1, 4], degree 8, weighted by exp(-a^2): erf's absolute error).
 * Within 2 ulp. erf(x) rounds to +-1 beyond |x| = 4: the tail stops there. */
static inline vec verf(vec x) {
    static const double N[] = {7.882503720e-05, -8.018863011e-04, 5.189313679e-03, -2.685433028e-02,
                               1.128359752e-01, -3.761262691e-01, 1.128379166e+00};
    static const double F[] = {7.237957920e-03, -6.107283459e-02, 2.308898019e-01, -5.107891489e-01,
                               7.112347559e-01, -5.789315652e-01, 7.495640760e-02, 5.533679730e-01,
                               6.902284277e-04};
    const lanes near = magnitude(x) < 1;
    const vec a = where(magnitude(x) > 4, (vec){} + 4, magnitude(x));
    const vec far = 1 - vexp(-a * a) * polynomial(1 / a, F, 8);
    return where(near, x * polynomial(x * x, N, 6), (vec)((lanes)far | ((lanes)x & SIGN_BIT)));
}
#endif


/* ReLU on a vector, NaN kept (z < 0 is false for NaN): z with the negative lanes cleared */
static inline vec relu(vec z) { return (vec)((lanes)z & ~(z < 0)); }

/* ReLU's backward, d where a > 0 or a is NaN (a <= 0 is false for NaN), as aten's threshold_backward */
static inline vec relu_backward(vec a, vec d) { return (vec)((lanes)d & ~(a <= 0)); }

/* act(z) on a vec */
static inline vec activation(int kind, vec z) {
    switch (kind) {
    case RELU: return relu(z);
    case TANH: return vtanh(z);
    case SIGMOID: return 1 / (1 + vexp(-z));
    case LEAKY_RELU: return where(z < 0, (real)0.01 * z, z);
    case GELU: return (real)0.5 * z * (1 + verf(z * (real)M_SQRT1_2));
    default: return z;
    }
}

/* a = act(z) over n values, a multiple of a vec's (a layer's rows of a block: one call per layer) */
static void activate(int kind, const real *restrict z, real *restrict a, int64_t n) {
    for (int64_t v = 0; v < n / LANES; v++) ROW(a)[v] = activation(kind, ROW(z)[v]);
}

/* d *= act'(z) over n values (a multiple of a vec's), given a = act(z): what aten's *_backward kernels compute (ReLU's
 * is mostly applied in registers, in gradients) */
static void activate_backward(int kind, const real *restrict z, const real *restrict a, real *restrict d, int64_t n) {
    switch (kind) {
    case RELU: for (int64_t v = 0; v < n / LANES; v++) ROW(d)[v] = relu_backward(ROW(a)[v], ROW(d)[v]); break;
    case TANH: for (int64_t t = 0; t < n; t++) d[t] *= 1 - a[t] * a[t]; break;
    case SIGMOID: for (int64_t t = 0; t < n; t++) d[t] *= (1 - a[t]) * a[t]; break;
    case LEAKY_RELU: for (int64_t t = 0; t < n; t++) d[t] = z[t] > 0 ? d[t] : (real)0.01 * d[t]; break;
    case GELU:
        for (int64_t v = 0; v < n / LANES; v++) {
            const vec zv = ROW(z)[v];
            const vec cdf = (real)0.5 * (1 + verf(zv * (real)M_SQRT1_2));
            const vec pdf = vexp((real)-0.5 * zv * zv) * (real)(0.5 * M_2_SQRTPI * M_SQRT1_2);
            ROW(d)[v] *= cdf + zv * pdf;
        }
        break;
    default: break;
    }
}


/* Two classes: softmax cross-entropy depends on the logits only through the margin z1 - z0, whose
 * weights are the rows' difference. margin[q] = W[1][q] - W[0][q] for the last layer's inputs q,
 * then b[1] - b[0]: one row of the last layer instead of two, a sigmoid instead of a softmax. */
static int two_classes(const Layout *net) { return net->sizes[net->n_layers] == 2; }

static void margin_weights(const Layout *net, const real *p, real *margin) {
    const int l = net->n_layers - 1;
    const real *w0 = p + net->w_at[l], *w1 = w0 + net->w_row[l];
    for (int64_t q = 0; q < net->sizes[l]; q++) margin[q] = w1[q * net->w_col[l]] - w0[q * net->w_col[l]];
    margin[net->sizes[l]] = p[net->b_at[l] + net->b_step[l]] - p[net->b_at[l]];
}

/* Z[L] = margin . A[L - 1] + its bias, as one row: even and odd inputs summed apart (two sums in
 * flight) */
static void forward_margin(const Layout *net, const Buffers *b) {
    const int l = net->n_layers - 1;
    const int64_t in = net->sizes[l];
    const real *w = b->margin;
    vec even[NV], odd[NV];
    for (int v = 0; v < NV; v++) even[v] = (vec){} + w[in], odd[v] = (vec){};
    int64_t q = 0;
    for (; q + 1 < in; q += 2) {
        const vec *a0 = ROW(b->A[l] + q * BLOCK), *a1 = ROW(b->A[l] + (q + 1) * BLOCK);
        for (int v = 0; v < NV; v++) even[v] += w[q] * a0[v], odd[v] += w[q + 1] * a1[v];
    }
    if (q < in)
        for (int v = 0; v < NV; v++) even[v] += w[q] * ROW(b->A[l] + q * BLOCK)[v];
    for (int v = 0; v < NV; v++) even[v] += odd[v];
    memcpy(b->Z[l + 1], even, sizeof even);
}

/* Rows j and j + 1 of layer l's pre-activations W A[l] + b for a block, in registers (without a
 * row j + 1, pair 0, row j twice) */
static inline void two_rows(const Layout *net, const real *p, const Buffers *b, int l, int64_t j, int pair,
                            vec z0[NV], vec z1[NV]) {
    const int64_t w_row = net->w_row[l], w_col = net->w_col[l];
    const real *w0 = p + net->w_at[l] + j * w_row, *w1 = pair ? w0 + w_row : w0;
    for (int v = 0; v < NV; v++) {
        z0[v] = (vec){} + p[net->b_at[l] + j * net->b_step[l]];
        z1[v] = (vec){} + p[net->b_at[l] + (j + pair) * net->b_step[l]];
    }
    for (int64_t q = 0; q < net->sizes[l]; q++) {
        const real w0q = w0[q * w_col], w1q = w1[q * w_col];
        const vec *a = ROW(b->A[l] + q * BLOCK);
        for (int v = 0; v < NV; v++) z0[v] += w0q * a[v], z1[v] += w1q * a[v];
    }
}

static inline void activate_row(int kind, vec z[NV]) {
    for (int v = 0; v < NV; v++) z[v] = activation(kind, z[v]);
}

/* Evaluation with two classes: the last hidden layer's outputs summed into the margin as they are
 * made, never stored; in the order of forward_margin's sums */
static void forward_hidden_to_margin(const Layout *net, const real *p, const Buffers *b, int l) {
    const int64_t out = net->sizes[l + 1];
    const real *w = b->margin;
    vec even[NV], odd[NV];
    for (int v = 0; v < NV; v++) even[v] = (vec){} + w[out], odd[v] = (vec){};
    for (int64_t j = 0; j < out; j += 2) {
        const int pair = j + 1 < out;
        vec z0[NV], z1[NV];
        two_rows(net, p, b, l, j, pair, z0, z1);
        activate_row(net->activation[l], z0);
        for (int v = 0; v < NV; v++) even[v] += w[j] * z0[v];
        if (pair) {
            activate_row(net->activation[l], z1);
            for (int v = 0; v < NV; v++) odd[v] += w[j + 1] * z1[v];
        }
    }
    for (int v = 0; v < NV; v++) even[v] += odd[v];
    memcpy(b->Z[net->n_layers], even, sizeof even);
}

/* Hidden layer l's dropout mask for unit j of a block into m: keep_scale where the unit is kept,
 * else 0 (rng.dropout_keep); the padding takes the first point's, as it takes its inputs. */
static void dropout_mask(const Layout *net, const Draws *draws, int l, int64_t j, real *restrict m) {
    const uint64_t counter = draws->key[l] + ((uint64_t)j << 32) + (uint64_t)draws->first, below = net->drop_below[l];
    const real scale = (real)net->keep_scale[l];
    for (int t = 0; t < BLOCK; t++) m[t] = splitmix64(counter + (uint64_t)t) >> 11 >= below ? scale : 0;
    for (int t = draws->mb; t < BLOCK; t++) m[t] = m[0];
}

/* Z[l + 1] = W A[l] + b and A[l + 1] = act(Z[l + 1]) for every layer (the last: logits, or with
 * margin (two classes) their margin in Z[L]'s first row); with keep 0 (evaluation) only what the
 * logits need. With draws (training with dropout) a hidden layer with dropout passes on its output
 * times its mask. Rows two at a time: twice the independent sums in flight, one load of A[l] for
 * both. ReLU is applied in registers, its Z not kept (its backward reads only its output). */
static void forward(const Layout *net, const real *p, const Buffers *b, int keep, int margin, const Draws *draws) {
    const int L = net->n_layers;
    for (int l = 0; l < L; l++) {
        if (margin && l == L - 1) {
            forward_margin(net, b);
            break;
        }
        if (margin && l == L - 2 && !keep) {
            forward_hidden_to_margin(net, p, b, l);
            break;
        }
        const int64_t out = net->sizes[l + 1];
        const int hidden = l < L - 1, fused = hidden && net->activation[l] == RELU;
        const int dropout = hidden && draws && net->drop_below[l];
        real *into = fused ? (dropout ? b->F[l + 1] : b->A[l + 1]) : b->Z[l + 1];
        for (int64_t j = 0; j < out; j += 2) {
            const int pair = j + 1 < out;
            vec z0[NV], z1[NV];
            two_rows(net, p, b, l, j, pair, z0, z1);
            if (fused)
                for (int v = 0; v < NV; v++) z0[v] = relu(z0[v]), z1[v] = relu(z1[v]);
            memcpy(into + j * BLOCK, z0, sizeof z0);
            if (pair) memcpy(into + (j + 1) * BLOCK, z1, sizeof z1);
        }
        if (hidden && !fused) activate(net->activation[l], b->Z[l + 1], dropout ? b->F[l + 1] : b->A[l + 1], out * BLOCK);
        if (dropout)
            for (int64_t j = 0; j < out; j++) {
                real *restrict m = b->M[l + 1] + j * BLOCK, *restrict a = b->A[l + 1] + j * BLOCK;
                const real *restrict f = b->F[l + 1] + j * BLOCK;
                dropout_mask(net, draws, l, j, m);
                for (int t = 0; t < BLOCK; t++) a[t] = f[t] * m[t];
            }
    }
}

/* The output of hidden layer A[l]'s activation (before dropout): what its derivative reads */
static const real *activated(const Layout *net, const Buffers *b, const Draws *draws, int l) {
    return draws && net->drop_below[l - 1] ? b->F[l] : b->A[l];
}

/* d *= the dropout mask of hidden layer A[l], if it has one, over its rows of a block */
static void dropout_backward(const Layout *net, const Buffers *b, const Draws *draws, int l, real *restrict d) {
    if (!draws || !net->drop_below[l - 1]) return;
    const real *restrict m = b->M[l];
    for (int64_t t = 0; t < net->sizes[l] * BLOCK; t++) d[t] *= m[t];
}

/* The sum of a vector's lanes, halving it (a chain of one add per lane would wait on each). */
typedef real half __attribute__((vector_size(32)));
typedef real quarter __attribute__((vector_size(16)));
static inline real lanes_sum(vec x) {
    half h[2];
    memcpy(h, &x, sizeof x);
    h[0] += h[1];
    quarter q[2];
    memcpy(q, h, sizeof q);
    q[0] += q[1];
    real sum = 0;
    for (int i = 0; i < (int)(sizeof(quarter) / sizeof(real)); i++) sum += q[0][i];
    return sum;
}

/* sum_t x[t] y[t] and sum_t y[t] over a block, lane by lane */
static inline vec lane_dots(const real *x, const real *y) {
    vec acc = ROW(x)[0] * ROW(y)[0];
    for (int v = 1; v < NV; v++) acc += ROW(x)[v] * ROW(y)[v];
    return acc;
}

static inline vec lane_totals(const real *y) {
    vec acc = ROW(y)[0];
    for (int v = 1; v < NV; v++) acc += ROW(y)[v];
    return acc;
}

/* The lane sums of LANES vectors at once, lane i of the result v[i]'s: in rounds h = LANES/2 ... 1,
 * v[k] and v[k + h] combine into v[k], a lane i with bit h clear adding v[k]'s lanes i and i ^ h,
 * one with it set v[k + h]'s (a transposition; fewer instructions than a lanes_sum each). The
 * shuffles' lane indices must be constants, hence the preprocessor. */
#if LANES == 16
#define INDICES(F, h) F(h, 0), F(h, 1), F(h, 2), F(h, 3), F(h, 4), F(h, 5), F(h, 6), F(h, 7), \
                      F(h, 8), F(h, 9), F(h, 10), F(h, 11), F(h, 12), F(h, 13), F(h, 14), F(h, 15)
typedef int32_t lane_index __attribute__((vector_size(64)));
#else
#define INDICES(F, h) F(h, 0), F(h, 1), F(h, 2), F(h, 3), F(h, 4), F(h, 5), F(h, 6), F(h, 7)
typedef int64_t lane_index __attribute__((vector_size(64)));
#endif
/* clang and gcc from 12 take the indices as arguments; older gcc as a vector */
#if defined(__clang__) || __GNUC__ >= 12
#define SHUFFLE(a, b, F, h) __builtin_shufflevector(a, b, INDICES(F, h))
#else
#define SHUFFLE(a, b, F, h) __builtin_shuffle(a, b, (lane_index){INDICES(F, h)})
#endif
/* lane i of the shuffle of (a, b): a's i and its partner i ^ h, or with bit h set b's */
#define SAME(h, i) ((i) & (h) ? LANES + (i) : (i))
#define PARTNER(h, i) ((i) & (h) ? LANES + ((i) ^ (h)) : (i) ^ (h))
#define COMBINE(v, h)                                                                  \
    for (int k = 0; k < h; k++)                                                        \
        v[k] = SHUFFLE(v[k], v[k + h], SAME, h) + SHUFFLE(v[k], v[k + h], PARTNER, h)

static inline vec transposed_sums(vec v[LANES]) {
#if LANES == 16
    COMBINE(v, 8);
#endif
    COMBINE(v, 4);
    COMBINE(v, 2);
    COMBINE(v, 1);
    return v[0];
}

/* out[i * stride] += sum_t x[t] rows[i][t] for the n rows of a block (x NULL: the rows' totals);
 * LANES rows at a time through transposed_sums where the outputs are consecutive */
static void dots(const real *x, const real *rows, int64_t n, real *out, int64_t stride) {
    int64_t i = 0;
    for (; stride == 1 && i + LANES <= n; i += LANES) {
        vec acc[LANES], sums;
        for (int r = 0; r < LANES; r++) {
            const real *row = rows + (i + r) * BLOCK;
            acc[r] = x ? lane_dots(x, row) : lane_totals(row);
        }
        sums = transposed_sums(acc);
        vec o;
        memcpy(&o, out + i, sizeof o);
        o += sums;
        memcpy(out + i, &o, sizeof o);
    }
    for (; i < n; i++) out[i * stride] += lanes_sum(x ? lane_dots(x, rows + i * BLOCK) : lane_totals(rows + i * BLOCK));
}

/* The column of inputs of points rows[0..m) (NULL: points first..first + m) of a (n, cols) table
 * into A[0], padded to a block with copies of the first point: the padding's activations are then
 * those of a real point (zeros times an infinite weight would make NaN where torch has none). */
static void load_inputs(const Layout *net, const Buffers *b, const real *table, int64_t cols, const int64_t *rows,
                        int64_t first, int m) {
    for (int64_t q = 0; q < net->sizes[0]; q++) {
        real *restrict x = b->A[0] + q * BLOCK;
        for (int t = 0; t < m; t++) x[t] = table[(rows ? rows[t] : first + t) * cols + q];
        for (int t = m; t < BLOCK; t++) x[t] = x[0];
    }
}

/* Rows of a block set to exactly zero past point m (a select, not a product: 0 * inf is NaN). */
static void clear_padding(real *rows, int64_t n_rows, int m) {
    if (m == BLOCK) return;
    for (int64_t j = 0; j < n_rows; j++)
        for (int t = m; t < BLOCK; t++) rows[j * BLOCK + t] = 0;
}

/* d mean CE / d logits = (softmax - onehot) / m into D[L & 1], zero on the padding */
static void softmax_backward(const Layout *net, const Buffers *b, const real *table, int64_t cols,
                             const int64_t *rows, int64_t first, int mb, real scale) {
    const int L = net->n_layers;
    const int64_t onehot = net->sizes[0] + 1, C = net->sizes[L];
    real *restrict d = b->D[L & 1], top[BLOCK], sum[BLOCK];
    const real *restrict z = b->Z[L];
    for (int t = 0; t < BLOCK; t++) top[t] = z[t], sum[t] = 0;
    for (int64_t c = 1; c < C; c++)
        for (int t = 0; t < BLOCK; t++) top[t] = z[c * BLOCK + t] > top[t] ? z[c * BLOCK + t] : top[t];
    for (int64_t c = 0; c < C; c++) {
        for (int v = 0; v < NV; v++) ROW(d + c * BLOCK)[v] = vexp(ROW(z + c * BLOCK)[v] - ROW(top)[v]);
        for (int t = 0; t < BLOCK; t++) sum[t] += d[c * BLOCK + t];
    }
    for (int t = 0; t < BLOCK; t++) sum[t] = scale / sum[t];
    for (int64_t c = 0; c < C; c++) {
        real *restrict dc = d + c * BLOCK;
        for (int t = 0; t < BLOCK; t++) dc[t] *= sum[t];
        for (int t = 0; t < mb; t++) dc[t] -= table[(rows ? rows[t] : first + t) * cols + onehot + c] * scale;
    }
    clear_padding(d, C, mb);
}

/* With two classes, the last layer's gradients from the margin's: d mean CE / d margin is
 * (sigmoid(margin) - y1) / m, which z1 and z0 take with opposite signs; then the gradient w.r.t. the
 * last hidden layer's pre-activations, the margin's weights times it, into D[(L - 1) & 1]. */
static void margin_backward(const Layout *net, const Buffers *b, real *g, const real *table, int64_t cols,
                            const int64_t *rows, int64_t first, int mb, real scale, const Draws *draws) {
    const int L = net->n_layers, l = L - 1;
    const int64_t label = net->sizes[0] + 2, fan_in = net->sizes[l];  /* y1: the table's column in + 2 */
    real *restrict d = b->D[L & 1];
    const real *restrict z = b->Z[L];
    for (int v = 0; v < NV; v++) ROW(d)[v] = 1 / (1 + vexp(-ROW(z)[v]));
    for (int t = 0; t < mb; t++) d[t] = (d[t] - table[(rows ? rows[t] : first + t) * cols + label]) * scale;
    clear_padding(d, 1, mb);
    const real bias = lanes_sum(lane_totals(d));
    g[net->b_at[l] + net->b_step[l]] += bias;
    g[net->b_at[l]] -= bias;
    real *gw0 = g + net->w_at[l], *gw1 = gw0 + net->w_row[l];
    memset(b->sums, 0, sizeof(real) * fan_in);
    dots(d, b->A[l], fan_in, b->sums, 1);
    for (int64_t q = 0; q < fan_in; q++) {
        gw1[q * net->w_col[l]] += b->sums[q];
        gw0[q * net->w_col[l]] -= b->sums[q];
    }
    if (l == 0) return;
    const int kind = net->activation[l - 1], relu_here = kind == RELU && !(draws && net->drop_below[l - 1]);
    for (int64_t q = 0; q < fan_in; q++) {
        vec da[NV];
        for (int v = 0; v < NV; v++) da[v] = b->margin[q] * ROW(d)[v];
        if (relu_here)
            for (int v = 0; v < NV; v++) da[v] = relu_backward(ROW(b->A[l] + q * BLOCK)[v], da[v]);
        memcpy(b->D[l & 1] + q * BLOCK, da, sizeof da);
    }
    if (!relu_here) {
        dropout_backward(net, b, draws, l, b->D[l & 1]);
        activate_backward(kind, b->Z[l], activated(net, b, draws, l), b->D[l & 1], fan_in * BLOCK);
    }
    clear_padding(b->D[l & 1], fan_in, mb);
}

/* torch.optim.Adam's step (AdamW's with decoupled) as torch's fused CPU kernel, which the reference
 * engine runs, writes it: the same operations in the same order, the moment's lerp one fused
 * multiply-add (where the compiler fuses another, a result differs by about an ulp). Model s has
 * its own lr, betas, eps and weight decay (from population/optim.py's Adam), and its moments in
 * rows s of exp_avg and exp_avg_sq. */
typedef struct {
    real *exp_avg, *exp_avg_sq;
    const double *lr, *beta1, *beta2, *eps, *weight_decay;
    int64_t step, decoupled;
} Adam;

static void adam_step(const Adam *o, int64_t s, int64_t k, real *restrict p, const real *restrict g, int64_t P) {
    const double lr = o->lr[s], beta1 = o->beta1[s], beta2 = o->beta2[s], wd = o->weight_decay[s];
    const real b2 = (real)beta2, c2 = (real)(1 - beta2), w = (real)(1 - beta1);
    const double t = (double)(o->step + k);  /* this step's count: the call's first, plus k */
    const real step_size = (real)(lr / (1 - pow(beta1, t))), bc2_sqrt = (real)sqrt(1 - pow(beta2, t));
    const real eps = (real)o->eps[s];
    const real l2 = o->decoupled ? 0 : (real)wd, shrink = (real)(o->decoupled ? 1 - lr * wd : 1);
    const int small_w = fabs(w) < (real)0.5;  /* torch's lerp: from the nearer end */
    const real lerp_w = small_w ? w : w - 1;
    real *restrict m = o->exp_avg + s * P, *restrict v = o->exp_avg_sq + s * P;
    if (shrink != 1)  /* a pass of its own: the product rounded before the update is added, as in torch */
        for (int64_t i = 0; i < P; i++) p[i] *= shrink;
    for (int64_t i = 0; i < P; i++) {
        const real gi = l2 != 0 ? g[i] + p[i] * l2 : g[i];
        m[i] = fma(lerp_w, gi - m[i], small_w ? m[i] : gi);
        v[i] = v[i] * b2 + c2 * gi * gi;
        p[i] += -step_size * m[i] / (sqrt(v[i]) / bc2_sqrt + eps);
    }
}

/* Each model's gradient of its mean cross-entropy on its minibatches into grad (S, P), with adam
 * followed by its Adam step. Model s's minibatches are its table rows rows[s * row_stride + t], t < n
 * (rows NULL: the first n), batch at a time: number first_step + k of the epoch (their dropout masks
 * drawn from seeds[s], rng.py's spec). A table row is the inputs, a one, the one-hot label
 * (loop.Setup.table). Without adam there is one minibatch: the caller steps. The gradient's norm goes
 * to norms[s] unless NULL: written at step 0, added at later ones; grad keeps the last gradient. */
void gradients(const Layout *net, int64_t S, real *params, int64_t P, const real *table, int64_t cols,
               const int64_t *rows, int64_t row_stride, int64_t n, int64_t batch, real *grad, real *norms,
               real *work, const int64_t *seeds, int64_t epoch, int64_t first_step, const Adam *adam) {
    const Buffers b = buffers(net, work);
    const int L = net->n_layers;
    Draws model_draws, *draws = has_dropout(net) ? &model_draws : NULL;
    for (int64_t s = 0; s < S; s++) for (int64_t start = 0; start < n; start += batch) {
        const int64_t k = start / batch, step = first_step + k, m = n - start < batch ? n - start : batch;
        const real scale = (real)1 / m;
        const real *p = params + s * P;
        real *g = grad + s * P;
        memset(g, 0, sizeof(real) * P);
        if (two_classes(net)) margin_weights(net, p, b.margin);
        if (draws) {
            const uint64_t key = splitmix64(splitmix64(splitmix64((uint64_t)seeds[s]) ^ DROPOUT) ^ (uint64_t)epoch);
            for (int l = 0; l < L - 1; l++) draws->key[l] = splitmix64(key + ((uint64_t)step << 16 | (uint64_t)l));
        }
        for (int64_t first = 0; first < m; first += BLOCK) {
            const int mb = m - first < BLOCK ? m - first : BLOCK;
            const int64_t *r = rows ? rows + s * row_stride + start + first : NULL;
            if (draws) draws->first = first, draws->mb = mb;
            load_inputs(net, &b, table, cols, r, first, mb);
            forward(net, p, &b, 1, two_classes(net), draws);
            int below = L - 1;  /* the layers from here down: the loop below */
            if (two_classes(net)) {
                margin_backward(net, &b, g, table, cols, r, first, mb, scale, draws);
                below = L - 2;
            } else
                softmax_backward(net, &b, table, cols, r, first, mb, scale);

            for (int l = below; l >= 0; l--) {
                const int64_t fan_in = net->sizes[l], fan_out = net->sizes[l + 1];
                const real *restrict dz = b.D[(l + 1) & 1];
                /* g_b += sum_t dz, g_W += dz A[l]^T, along whichever axis of W is consecutive */
                dots(NULL, dz, fan_out, g + net->b_at[l], net->b_step[l]);
                real *gw = g + net->w_at[l];
                if (net->w_row[l] == 1)  /* W^T stored (the first layer) */
                    for (int64_t q = 0; q < fan_in; q++)
                        dots(b.A[l] + q * BLOCK, dz, fan_out, gw + q * net->w_col[l], 1);
                else
                    for (int64_t j = 0; j < fan_out; j++)
                        dots(dz + j * BLOCK, b.A[l], fan_in, gw + j * net->w_row[l], net->w_col[l]);
                if (l == 0) break;
                const real *w = p + net->w_at[l];  /* W^T dz, times act'(Z[l]); two rows at a time */
                const int64_t w_row = net->w_row[l], w_col = net->w_col[l];
                const int kind = net->activation[l - 1], relu_here = kind == RELU && !(draws && net->drop_below[l - 1]);
                for (int64_t q = 0; q < fan_in; q += 2) {
                    const int pair = q + 1 < fan_in;
                    vec da0[NV] = {}, da1[NV] = {};
                    for (int64_t j = 0; j < fan_out; j++) {
                        const real w0 = w[j * w_row + q * w_col], w1 = w[j * w_row + (q + pair) * w_col];
                        const vec *dj = ROW(dz + j * BLOCK);
                        for (int v = 0; v < NV; v++) da0[v] += w0 * dj[v], da1[v] += w1 * dj[v];
                    }
                    if (relu_here) {  /* in registers, as in forward */
                        const vec *a0 = ROW(b.A[l] + q * BLOCK), *a1 = ROW(b.A[l] + (q + pair) * BLOCK);
                        for (int v = 0; v < NV; v++)
                            da0[v] = relu_backward(a0[v], da0[v]), da1[v] = relu_backward(a1[v], da1[v]);
                    }
                    memcpy(b.D[l & 1] + q * BLOCK, da0, sizeof da0);
                    if (pair) memcpy(b.D[l & 1] + (q + 1) * BLOCK, da1, sizeof da1);
                }
                if (!relu_here) {
                    dropout_backward(net, &b, draws, l, b.D[l & 1]);
                    activate_backward(kind, b.Z[l], activated(net, &b, draws, l), b.D[l & 1], fan_in * BLOCK);
                }
                clear_padding(b.D[l & 1], fan_in, mb);
            }
        }
        if (norms) {
            double squares = 0;
            for (int64_t i = 0; i < P; i++) squares += (double)g[i] * g[i];
            norms[s] = (step ? norms[s] : 0) + (real)sqrt(squares);
        }
        if (adam) adam_step(adam, s, k, params + s * P, g, P);
    }
}

/* Each point's cross-entropy -log softmax(z)[label] and predicted class (the first maximum, a NaN
 * counting as the maximum: torch's argmax) from its C logits, rows of z */
static void softmax_loss(const real *restrict z, int64_t C, const int64_t *restrict label, int mb,
                         real *restrict nll, int64_t *restrict best) {
    real top[BLOCK], sum[BLOCK], picked[BLOCK], e[BLOCK];
    for (int t = 0; t < BLOCK; t++) top[t] = z[t], best[t] = 0, sum[t] = 0, picked[t] = 0;
    for (int64_t c = 1; c < C; c++)
        for (int t = 0; t < BLOCK; t++) {
            const real v = z[c * BLOCK + t];
            const int take = top[t] == top[t] && (v > top[t] || v != v);
            top[t] = take ? v : top[t];
            best[t] = take ? c : best[t];
        }
    for (int64_t c = 0; c < C; c++) {
        for (int v = 0; v < NV; v++) ROW(e)[v] = vexp(ROW(z + c * BLOCK)[v] - ROW(top)[v]);
        for (int t = 0; t < mb; t++) {
            sum[t] += e[t];
            picked[t] += label[t] == c ? z[c * BLOCK + t] : 0;
        }
    }
    for (int t = 0; t < mb; t++) nll[t] = log(sum[t]) + top[t] - picked[t];
}

/* The block's summed loss from the margin z1 - z0 of two classes: softplus(-margin) for class 1,
 * softplus(margin) for class 0, written max(s, 0) + log(1 + exp(-|s|)) (no overflow) and summed as
 * the sum of the first terms plus the log of the product of the (1 + exp(-|s|)), each in [1, 2]:
 * one log a block instead of a log1p a point. Class 1 where the margin is positive (a tie is
 * class 0, torch's first maximum; a NaN margin too: its loss is NaN) */
static real margin_loss(const real *restrict margin, const int64_t *restrict label, int mb, int64_t *restrict best) {
    real positive = 0, product = 1, e[BLOCK];
    for (int v = 0; v < NV; v++) ROW(e)[v] = vexp(-magnitude(ROW(margin)[v]));  /* exp(-|s|) */
    _Pragma("omp simd reduction(+:positive) reduction(*:product)")
    for (int t = 0; t < mb; t++) {
        const real s = label[t] ? -margin[t] : margin[t];
        positive += s > 0 ? s : 0;
        product *= 1 + e[t];
        best[t] = margin[t] > 0;
    }
    return positive + log(product);
}

/* Each model's mean cross-entropy and accuracy on consecutive ranges of columns (splits) of x
 * (in, N), labels y: out[s * out_row + k] and out[s * out_row + n_splits + k] for range k (a row of
 * the history's record). NaN logits give a NaN loss; the predicted class is the first maximum, a
 * NaN counting as the maximum (torch's argmax). */
void evaluate(const Layout *net, int64_t S, const real *params, int64_t P, const real *x, const int64_t *y,
              int64_t N, const int64_t *splits, int64_t n_splits, double *out, int64_t out_row, real *work) {
    const Buffers b = buffers(net, work);
    const int L = net->n_layers;
    const int64_t in = net->sizes[0], C = net->sizes[L];
    for (int64_t s = 0; s < S; s++) {
        const real *p = params + s * P;
        if (two_classes(net)) margin_weights(net, p, b.margin);
        int64_t at = 0;
        for (int64_t k = 0; k < n_splits; k++) {
            double loss = 0;
            int64_t correct = 0;
            for (int64_t first = at; first < at + splits[k]; first += BLOCK) {
                const int mb = at + splits[k] - first < BLOCK ? at + splits[k] - first : BLOCK;
                for (int64_t q = 0; q < in; q++) {
                    memcpy(b.A[0] + q * BLOCK, x + q * N + first, sizeof(real) * mb);
                    memset(b.A[0] + q * BLOCK + mb, 0, sizeof(real) * (BLOCK - mb));
                }
                forward(net, p, &b, 0, two_classes(net), NULL);
                const int64_t *label = y + first;
                real nll[BLOCK], block_loss;
                int64_t best[BLOCK];
                if (two_classes(net) && isfinite(block_loss = margin_loss(b.Z[L], label, mb, best))) {
                    loss += block_loss;
                } else {
                    /* a diverged two-class model too: torch's argmax of its logits (a NaN one is the
                     * class) cannot be read off their margin */
                    if (two_classes(net)) forward(net, p, &b, 0, 0, NULL);
                    softmax_loss(b.Z[L], C, label, mb, nll, best);
                    _Pragma("omp simd reduction(+:loss)")
                    for (int t = 0; t < mb; t++) loss += nll[t];
                }
                _Pragma("omp simd reduction(+:correct)")
                for (int t = 0; t < mb; t++) correct += best[t] == label[t];
            }
            /* the sum rounded to REAL first: it overflows to inf as a sum in REAL does */
            out[s * out_row + k] = (double)(real)loss / (double)splits[k];
            out[s * out_row + n_splits + k] = (double)correct / (double)splits[k];
            at += splits[k];
        }
    }
}

/* Each model's data order for an epoch, rng.py's permutation(seeds[s], epoch, n), into row s of
 * order (S, n) (the spec: rng.py's docstring). */
void permutations(const int64_t *seeds, int64_t S, int64_t epoch, int64_t n, int64_t *order) {
    for (int64_t s = 0; s < S; s++) {
        const uint64_t key = splitmix64(splitmix64(splitmix64((uint64_t)seeds[s]) ^ DATA_ORDER) ^ (uint64_t)epoch);
        int64_t *a = order + s * n;
        for (int64_t i = 0; i < n; i++) a[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            const int64_t j = (int64_t)(((splitmix64(key + (uint64_t)i) >> 32) * (uint64_t)(i + 1)) >> 32);
            const int64_t kept = a[i];
            a[i] = a[j];
            a[j] = kept;
        }
    }
}
