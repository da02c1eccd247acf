# %% [markdown]
# # Lab 2 — Backpropagation by hand
#
# In Lab 1, `loss.backward()` filled in every gradient for us. In this lab you open that box:
#
# 1. load a data set that no straight line can separate (an XOR pattern);
# 2. derive the gradients of a two-layer network by the chain rule, **keeping track of every
#    shape**, and check them against autograd;
# 3. train the network with your own gradients;
# 4. hunt down **planted bugs** in a backward pass with a gradient check;
# 5. look at decision boundaries on the train, validation and test splits;
# 6. compare **SGD** and **Adam**, with and without a **learning-rate schedule**.
#
# Cells marked **Exercise** are for you. Write your answer in the cell below the question.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import trainlab as tl

torch.set_num_threads(1)  # these networks are tiny: one thread runs them faster than several

# %% [markdown]
# ## 1. The data: an XOR pattern
#
# The points come as a CSV file with two coordinates and a class label per row. It ships with
# trainlab; the built-in experiment `xor_sgd_vs_adam` reads it and splits it 80/10/10 into
# training, validation and test sets.

# %%
print(tl.EXAMPLE_XOR_CSV.name)
print("".join(tl.EXAMPLE_XOR_CSV.read_text().splitlines(keepends=True)[:4]))

cfg = tl.experiment("xor_sgd_vs_adam", seeds=1)
data = tl.make_dataset(cfg.data)
for split, X in (("train", data.X_train), ("val", data.X_val), ("test", data.X_test)):
    print(f"{split:5s} {X.shape}")
tl.plot_data(data, title="XOR pattern: circles train, triangles val, squares test");

# %% [markdown]
# **Exercise 1.1.** Why split off *two* held-out sets? What is the validation set for, and what
# is the test set for? What goes wrong if you use the test set to pick the learning rate?

# %% [markdown] solution
# **Answer.** The **validation** set is used *during* development: to watch for overfitting, to
# stop early and to choose hyperparameters (learning rate, size, epochs). Every such choice fits
# the validation set a little, so its score becomes optimistic. The **test** set is touched
# once, at the very end, to estimate how the final model does on new data. If it is used to
# pick the learning rate it becomes a second validation set and the reported number is
# optimistic, with nothing left to check it.

# %% [markdown]
# ## 2. The loss: negative log-likelihood
#
# The network outputs, for each point $i$, a probability for each class, $\hat p_{i,c}$
# (softmax of the logits). The **cross-entropy** loss is the average negative log-probability
# the model gives to the *true* class $y_i$:
#
# $$L = -\frac{1}{N}\sum_{i=1}^{N} \log \hat p_{i,\,y_i}.$$
#
# It is 0 when the model puts probability 1 on every true class, $\ln 2 \approx 0.693$ for a
# coin flip between two classes, and grows without bound for confident mistakes.
#
# **Exercise 2.1.** Write `nll(p_hat, y)` for `p_hat` of shape `(N, 2)` and integer labels `y`
# of shape `(N,)`. Hint: `p_hat[range(N), y]` picks the probability of each row's true class.
# Check it against `F.cross_entropy(logits, y)`, which takes the *logits* and applies the
# softmax itself.

# %% student
# your code here

# %% solution
def nll(p_hat, y):
    N = y.shape[0]
    return -torch.log(p_hat[range(N), y]).mean()  # (N,) probabilities of the true classes → ()


logits = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
y_demo = torch.tensor([0, 1, 1, 0, 1])
print(nll(torch.softmax(logits, dim=1), y_demo).item(), F.cross_entropy(logits, y_demo).item())

# %% [markdown] solution
# The two agree. (In practice one works with log-probabilities, `log_softmax`, to avoid
# `log(0)` for very confident predictions — `F.cross_entropy` does that.) Note that
# `p_hat[range(N)]` without `y` would average the log-probabilities of *both* classes: a planted
# bug you will meet in section 5.

# %% [markdown]
# **Exercise 2.2.** What is the cross-entropy loss's connection to **energy**? Hint: physics
# gives a state of energy $E$ the probability $e^{-E/T} / Z$ (the Boltzmann distribution), with
# $Z$ the sum of $e^{-E/T}$ over all states. Read the logits as negative energies, $E_c = -z_c$,
# at temperature $T = 1$, write $L$ for one point in terms of the energies, and check your
# formula against `F.cross_entropy` on the `logits` above.

# %% student
# your code here

# %% solution
energies = -logits                                      # E[i, c] = −z[i, c]: (5, 2)
free_energy = -torch.logsumexp(-energies, dim=1)        # F = −log Z = −log Σ_c e^{−E_c}: (5,)
true_energy = energies[range(len(y_demo)), y_demo]      # E of each point's true class: (5,)
print("mean of E_y − F:", (true_energy - free_energy).mean().item())
print("cross-entropy:  ", F.cross_entropy(logits, y_demo).item())

# %% [markdown] solution
# **Answer.** Softmax *is* the Boltzmann distribution over the classes, with energies
# $E_c = -z_c$ and temperature 1: $\hat p_c = e^{-E_c} / Z$, $Z = \sum_j e^{-E_j}$ (the
# partition function). The negative log-likelihood of the true class is then
#
# $$-\log \hat p_y = E_y + \log Z = E_y - F, \qquad F = -\log Z \text{ (the free energy)}:$$
#
# the energy of the right answer, measured from the free energy of all answers. Minimising it
# pushes the energy of the true class **down** and, through $\log Z$, the energies of the other
# classes **up** — each in proportion to the probability the model gives it, so the wrong class
# the model likes most is pushed hardest. The loss is 0 only when the true class's energy is far
# below all others. This is the view of energy-based models: learning shapes an energy landscape
# with low energy at the right answers.

# %% [markdown]
# **Exercise 2.3.** A calculus check before the backward pass. (i) What does a derivative tell
# you about a function — what does a *positive* or *negative* gradient $\partial L/\partial
# \theta$ mean? (ii) Why is that useful for optimisation? (iii) What is the chain rule, and why
# does backpropagation need it? Answer (i) and (ii) with a number too: in section 3 below you get
# every gradient of the network's loss; take the weight whose gradient is largest in size, nudge
# it by $\pm 10^{-3}$ and watch the loss.

# %% [markdown] solution
# **Answer.** (i) The derivative is the slope: how fast $L$ changes when $\theta$ changes, with
# everything else fixed. **Positive**: increasing $\theta$ increases the loss (to lower it,
# decrease $\theta$); **negative**: increasing $\theta$ decreases the loss; **zero**: a flat spot
# (a minimum, a maximum or a saddle). The gradient collects these slopes for all parameters and
# points in the direction in which $L$ *grows* fastest.
# (ii) So $-\nabla_\theta L$ is the direction of steepest *descent*: the update
# $\theta \leftarrow \theta - \eta \nabla_\theta L$ lowers the loss for a small enough $\eta$, and
# the size of each component says how much that parameter matters right now. The code after the
# gradients in section 3 measures it on the network.
# (iii) The chain rule differentiates a composition: for $L(z(\theta))$,
# $\partial L/\partial\theta = \partial L/\partial z \cdot \partial z/\partial\theta$. A network is a
# long composition (layer after layer), and backpropagation is the chain rule applied from the
# loss backwards, reusing each layer's $\partial L/\partial Z$ for the layer below.

# %% [markdown]
# ## 3. The backward pass, with shapes
#
# The network: $d_0 = 2$ inputs, $d_1 = 10$ ReLU hidden units, $d_2 = 2$ classes, and a batch
# of $N$ rows. Weights are stored as in PyTorch's `nn.Linear`, **output × input**.
#
# | step | formula | shape |
# | --- | --- | --- |
# | input | $A_0 = X$ | $(N, d_0)$ |
# | layer 1 | $Z_1 = A_0 W_1^\top + b_1$ | $(N, d_1)$, with $W_1: (d_1, d_0)$ |
# | ReLU | $A_1 = \max(Z_1, 0)$ | $(N, d_1)$ |
# | layer 2 | $Z_2 = A_1 W_2^\top + b_2$ (the logits) | $(N, d_2)$ |
# | softmax | $\hat P = \mathrm{softmax}(Z_2)$, row by row | $(N, d_2)$ |
# | loss | $L = -\frac1N\sum_i \log \hat P_{i, y_i}$ | scalar |
#
# Backwards, each step is the chain rule; **every gradient has the shape of what it is the
# gradient of**, which is the quickest check of a derivation:
#
# | gradient | formula | shape |
# | --- | --- | --- |
# | $\partial L/\partial Z_2$ | $(\hat P - Y)/N$, $Y$ the one-hot labels | $(N, d_2)$ |
# | $\partial L/\partial W_2$ | $(\partial L/\partial Z_2)^\top A_1$ | $(d_2, d_1)$ = shape of $W_2$ |
# | $\partial L/\partial b_2$ | $\sum_i (\partial L/\partial Z_2)_i$ | $(d_2,)$ |
# | $\partial L/\partial A_1$ | $(\partial L/\partial Z_2)\, W_2$ | $(N, d_1)$ |
# | $\partial L/\partial Z_1$ | $\partial L/\partial A_1 \odot \mathbb{1}[Z_1 > 0]$ (ReLU passes gradient only where it was active) | $(N, d_1)$ |
# | $\partial L/\partial W_1$ | $(\partial L/\partial Z_1)^\top A_0$ | $(d_1, d_0)$ |
# | $\partial L/\partial b_1$ | $\sum_i (\partial L/\partial Z_1)_i$ | $(d_1,)$ |
#
# `tl.Backprop` implements exactly these steps (for any depth) with plain tensor operations, no
# autograd. Its parameters are a dict in the layout of the model's `state_dict`: `"0.weight"` is
# $W_1$, `"2.weight"` is $W_2$ (index 1 is the ReLU, which has no parameters).

# %%
X = torch.tensor(data.X_train)  # float64: gradient checks need the precision
y = torch.tensor(data.y_train)
model = tl.build_model(cfg.model, data.in_dim, data.n_classes, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
params = {name: p.detach() for name, p in model.named_parameters()}

bp = tl.Backprop("relu")
logits, As, Zs = bp.forward(params, X)
for l, (A, Z) in enumerate(zip(As, Zs), start=1):
    print(f"layer {l}: A_{l - 1} {tuple(A.shape)}  Z_{l} {tuple(Z.shape)}")

loss, grads = bp.loss_and_grads(params, X, y)
print(f"\nloss {loss.item():.6f}")
for name, g in grads.items():
    print(f"dL/d{name:9s} {tuple(g.shape)}  (parameter {tuple(params[name].shape)})")

# %% solution
# Exercise 2.3 (i)–(ii) in numbers: nudge the weight with the largest gradient both ways.
name, g = max(grads.items(), key=lambda item: item[1].abs().max().item())
index = tuple(int(i) for i in np.unravel_index(g.abs().argmax().item(), g.shape))
print(f"largest gradient: dL/d{name}{list(index)} = {g[index].item():+.4f}")
for nudge in (+1e-3, -1e-3):
    nudged = {k: v.clone() for k, v in params.items()}
    nudged[name][index] += nudge
    change = bp.loss(bp.forward(nudged, X)[0], y).item() - loss.item()
    print(f"θ {nudge:+.0e}: loss changes by {change:+.2e} (gradient × nudge = {g[index].item() * nudge:+.2e})")

# %% [markdown]
# Autograd computes the same gradients from the same weights; they agree to rounding:

# %%
model.zero_grad()
F.cross_entropy(model(X), y).backward()
for name, p in model.named_parameters():
    print(f"{name:9s} max |by hand − autograd| = {(grads[name] - p.grad).abs().max().item():.1e}")

# %% [markdown]
# **Exercise 3.1.** Without `tl.Backprop`: write the backward pass of the table yourself, from
# `As`, `Zs` and `params` above, and compare your four gradients with `grads`. (Useful:
# `F.one_hot(y, num_classes=2)`, `torch.softmax(logits, dim=1)`, `M.T` for a transpose.)

# %% student
# your code here

# %% solution
A0, A1 = As
Z1, Z2 = Zs
W2 = params["2.weight"]
N = y.shape[0]

dZ2 = (torch.softmax(Z2, dim=1) - F.one_hot(y, num_classes=2)) / N  # (N, 2)
dW2 = dZ2.T @ A1                                                    # (2, N) @ (N, 10) = (2, 10)
db2 = dZ2.sum(dim=0)                                                # (2,)
dA1 = dZ2 @ W2                                                      # (N, 2) @ (2, 10) = (N, 10)
dZ1 = dA1 * (Z1 > 0)                                                # (N, 10)
dW1 = dZ1.T @ A0                                                    # (10, N) @ (N, 2) = (10, 2)
db1 = dZ1.sum(dim=0)                                                # (10,)

mine = {"0.weight": dW1, "0.bias": db1, "2.weight": dW2, "2.bias": db2}
for name, g in mine.items():
    print(f"{name:9s} max |mine − tl.Backprop| = {(g - grads[name]).abs().max().item():.1e}")

# %% [markdown]
# **Exercise 3.2.** Why is $\partial L/\partial Z_2 = (\hat P - Y)/N$? Derive it for one row,
# using $\log \hat p_c = z_c - \log\sum_j e^{z_j}$.

# %% [markdown] solution
# **Answer.** For one row with true class $y$, $\ell = -\log \hat p_y = -z_y + \log\sum_j
# e^{z_j}$. Differentiating with respect to $z_c$: the first term gives $-1$ if $c = y$ (else
# 0), the second gives $e^{z_c}/\sum_j e^{z_j} = \hat p_c$. So $\partial \ell/\partial z_c =
# \hat p_c - \mathbb 1[c = y]$, the row of $\hat P - Y$. The loss is the *mean* over $N$ rows,
# hence the $1/N$. The softmax and the log cancel into this simple form, which is why
# frameworks fuse them into one "cross-entropy with logits".

# %% [markdown]
# ## 4. Training with hand-made gradients
#
# Gradient descent is now three lines: forward, backward, and the update
# $\theta \leftarrow \theta - \eta\,\nabla_\theta L$ (`bp.sgd_step`). Full batch (all 400
# training points per step), learning rate 0.1, as in the experiment.

# %%
params = {name: p.detach().clone() for name, p in model.named_parameters()}  # the same start
for epoch in range(1, 2001):
    loss, grads = bp.loss_and_grads(params, X, y)
    params = bp.sgd_step(params, grads, lr=0.1)
    if epoch in (1, 10, 100, 500, 1000, 2000):
        print(f"epoch {epoch:4d}  train loss {loss.item():.4f}")

trained_by_hand = tl.build_model(cfg.model, data.in_dim, data.n_classes, dtype=torch.float64)
trained_by_hand.load_state_dict(params)
tl.plot_boundary(trained_by_hand, data, split="train", title="trained with hand-made gradients, 2000 steps");

# %% [markdown]
# ## 5. Finding bugs with a gradient check
#
# A wrong backward pass rarely crashes: the shapes fit, the loss even goes down a bit, and the
# model is just worse than it should be. The reliable way to find such bugs is a **gradient
# check**: compare each analytic gradient with central differences of the loss,
# $\frac{L(\theta + \varepsilon) - L(\theta - \varepsilon)}{2\varepsilon}$, one parameter entry at
# a time (slow, but obviously correct), and report the relative error
# $|a - n| / (|a| + |n|)$ per parameter tensor. Correct code gives ~$10^{-8}$ or less in
# float64; a bug gives something near 1. `tl.gradcheck` also compares with autograd, and checks
# that one update step actually lowers the loss.

# %%
tl.gradcheck(cfg).show()

# %% [markdown]
# trainlab carries the bugs of the original course notebook — its lines
# `W1 = torch.randn(h, k)`, the loss's `p_y_hat[correct_class_loc]` and the update
# `W1 += learning_rate * dL_dW1` — and a few more classics, each planted into one step of
# `tl.Backprop`:

# %%
for name, description in tl.planted_bugs().items():
    print(f"{name:26s} {description}")

# %% [markdown]
# A note on the course's layout. The course stores $W_1$ as *input × output*, $(d, h)$, and
# computes `z1 = X @ W1`; there, its `dL_dW1 = X.T @ dL_dz1` — which it asks you to check — is
# **correct**: $(d, N) @ (N, h) = (d, h)$, the shape of $W_1$. trainlab stores weights as
# `nn.Linear` does, *output × input*, so the same gradient is its transpose,
# $(\partial L/\partial Z_1)^\top A_0$. What *is* wrong in the course is the line that makes
# $W_1$: `torch.randn(h, k)` is $(10, 2)$ where `X @ W1` needs $(2, 10)$, and the very first
# forward pass stops:

# %%
h, k = 10, 2
W1 = torch.randn(h, k) * 0.01  # the course's line; it needs (d, h) = (2, 10)
try:
    X.float() @ W1
except RuntimeError as error:
    print("RuntimeError:", error)

# %% [markdown]
# A crash is the friendly kind of bug: it says where it is. `tl.gradcheck` reports the
# same slip (`w1-shape`, $W_1$ with its two dimensions swapped) as a failed check that names the
# shapes, instead of a traceback:

# %%
tl.gradcheck(cfg, bug="w1-shape").show()

# %% [markdown]
# **Exercise 5.1.** Before running anything: for each of the other bugs, which of $W_1, b_1,
# W_2, b_2$ will the check report as wrong, and why? Then run `tl.gradcheck(cfg, bug=name)` for
# every bug and compare with your predictions (`result.wrong` lists the wrong parameters,
# `result.descent.ok` says whether the update went downhill, `result.shape_error` why the
# forward pass could not run, `result.show()` prints the full table).

# %% student
# your code here

# %% solution
for name in tl.planted_bugs():
    result = tl.gradcheck(cfg, bug=name)
    if result.shape_error:
        print(f"{name:26s} the forward pass cannot run: {result.shape_error}")
    else:
        print(f"{name:26s} wrong: {', '.join(result.wrong) or '—':40s} downhill: {result.descent.ok}")

# %% [markdown] solution
# **Answer.**
#
# * `w1-shape` — no gradient at all: the forward pass cannot multiply $X$ by $W_1^\top$. (With
#   as many hidden units as inputs the shapes would fit, and the swap would silently transpose
#   $W_1$; only the comparison with autograd, on the weights as meant, would see it.)
# * `no-activation-derivative` — $W_1$ and $b_1$: the missing factor $\mathbb 1[Z_1 > 0]$ sits
#   between layer 2 and layer 1, so everything *below* the ReLU is wrong and layer 2 is fine.
# * `wrong-probabilities` — the backward pass is right for the *true* loss, but the implemented
#   loss is a different function, and the check differentiates the loss as implemented; against
#   autograd (on the true loss) it agrees. $W_1$, $b_1$ and $W_2$ are wrong. $b_2$ slips
#   through, by luck: the buggy loss's bias gradient is $\frac1N\sum_i(\hat p_i - \tfrac12)$,
#   the true one $\frac1N\sum_i(\hat p_i - Y_i)$, and they are equal whenever the checked rows
#   are half of each class — as these 16 are. Check on more than one batch.
# * `bias-mean` — $b_1$ and $b_2$: dividing by $N$ a second time shrinks only the biases.
# * `no-batch-mean` — all four: the missing $1/N$ at the top scales every gradient by $N$.
# * `gradient-ascent` — none! The gradients are perfect; the update adds them instead of
#   subtracting, and only the descent check ("one step must lower the loss") catches it.
#
# The pattern to remember: an error in one step corrupts every gradient computed *after* it in
# the backward pass (the layers below it), never those before it.

# %% [markdown]
# **Exercise 5.2.** Train for a few hundred steps as in section 4, but with the update of the
# `gradient-ascent` bug, `params[k] + lr * grads[k]`. What happens to the loss?

# %% student
# your code here

# %% solution
params = {name: p.detach().clone() for name, p in model.named_parameters()}
for epoch in range(1, 301):
    loss, grads = bp.loss_and_grads(params, X, y)
    params = {k: params[k] + 0.1 * grads[k] for k in params}  # the bug: += instead of -=
    if epoch in (1, 10, 100, 300):
        print(f"epoch {epoch:4d}  train loss {loss.item():.4f}")

# %% [markdown] solution
# **Answer.** The loss *rises* from ln 2 and keeps rising: the model is trained to be as wrong
# as possible, with ever more confidence. A loss going up from the very first steps, with a
# small learning rate, points at the sign of the update.

# %% [markdown]
# ## 6. Decision boundaries on train, validation and test
#
# Now train the same network properly — Adam, full batch, lr 0.1 — with `tl.train` (autograd),
# for 2,000 epochs, and look at its decision boundary with each split's points.

# %%
short = tl.experiment("xor_sgd_vs_adam", seeds=1, overrides=["train.epochs=2000"])
adam = tl.train(short.at({"optim.name": "adam"}), seed=0)
s = adam.summary()
print(f"accuracy: train {s['final_train_acc']:.3f}, val {s['final_val_acc']:.3f}, test {s['test_acc']:.3f}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
for ax, split in zip(axes, ("train", "val", "test")):
    tl.plot_boundary(adam, data, ax=ax, split=split, title=f"{split} points")
plt.show()

# %% [markdown]
# **Exercise 6.1.** Can a *linear* model learn this boundary? Train the same configuration with
# no hidden layer (`"model.hidden": []`, which is logistic regression), report its accuracies
# and plot its boundary. Explain the result.

# %% student
# your code here

# %% solution
linear = tl.train(short.at({"optim.name": "adam", "model.hidden": []}), seed=0)
s = linear.summary()
print(f"logistic regression: train {s['final_train_acc']:.3f}, val {s['final_val_acc']:.3f}, test {s['test_acc']:.3f}")
tl.plot_boundary(linear, data, title="logistic regression");

# %% [markdown] solution
# **Answer.** No. A linear model's boundary is a straight line, and in an XOR pattern the
# classes sit in opposite corners: any line leaves about half of one class on the wrong side.
# It ends near chance (50–60%), while the 10-unit ReLU network bends its boundary around the
# corners.

# %% [markdown]
# ## 7. SGD versus Adam, and a learning-rate schedule
#
# **Momentum** keeps a running average of past gradients, $m_t = \beta_1 m_{t-1} + (1-\beta_1)
# g_t$, and steps along it; **adaptive scaling** keeps a running average of squared gradients,
# $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$, and divides by its square root. Adam does both:
# $\theta_t = \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$ (the hats undo the
# bias of starting the averages at 0).
#
# A **learning-rate schedule** changes $\eta$ during training. `StepLR` multiplies it by
# $\gamma$ every `step_size` epochs; here $\gamma = 0.1$ every 500 epochs, so 0.1 → 0.01 → 0.001
# → 0.0001 over 2,000 epochs. The four combinations, from the same initial weights (on the
# right, each optimizer's line hides under the other's: the schedules do not depend on it):

# %%
runs = {}
for optimizer in ("sgd", "adam"):
    for schedule in ("constant", "step"):
        setting = short.at({"optim.name": optimizer, "optim.schedule.name": schedule,
                            "optim.schedule.step_size": 500})
        runs[f"{optimizer}, {schedule} lr"] = tl.train(setting, seed=0)

fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
tl.plot_history(runs, columns=["train_loss"], ax=axes[0], title="training loss (log scale)", log=True)
tl.plot_history(runs, columns=["lr"], ax=axes[1], title="learning rate used in each epoch", log=True)
plt.show()
for label, run in runs.items():
    h = run.history["train_loss"]
    print(f"{label:20s} train loss at epoch 100: {h[99]:.3f}, 500: {h[499]:.3f}, 2000: {h[-1]:.3f}")

# %% [markdown]
# **Exercise 7.1.** What learning-rate schedule did the training in section 4 use?

# %% [markdown] solution
# **Answer.** A constant one: $\eta = 0.1$ in every step (the `constant lr` lines of the right
# plot).

# %% [markdown]
# **Exercise 7.2.** Why do momentum and adaptive scaling help? Relate your answer to the curves:
# how many epochs does each optimizer need to get close to its final loss?

# %% [markdown] solution
# **Answer.** **Momentum** averages out gradient components that flip sign from step to step
# (oscillation across a narrow valley) and accumulates those that keep their sign (the way
# down the valley), so progress along consistent directions speeds up. **Adaptive scaling**
# gives every parameter its own step size: parameters with small gradients (flat directions)
# get larger steps, those with large gradients smaller ones, so one learning rate fits all
# directions. In the curves, Adam is close to its final loss within about a hundred epochs,
# while SGD with the same learning rate is still descending after thousands.

# %% [markdown]
# **Exercise 7.3.** The schedule *hurt* SGD here: compare the `sgd` lines after epoch 500. Why?
# When does decaying the learning rate help? Try a `step_size` that suits SGD better.

# %% student
# your code here

# %% solution
later = tl.train(short.at({"optim.name": "sgd", "optim.schedule.name": "step", "optim.schedule.step_size": 1500}),
                 seed=0)
for label, run in (("StepLR every  500 epochs", runs["sgd, step lr"]), ("StepLR every 1500 epochs", later),
                   ("constant lr", runs["sgd, constant lr"])):
    print(f"sgd, {label:24s} final train loss {run.history['train_loss'][-1]:.3f}")

# %% [markdown] solution
# **Answer.** At epoch 500 SGD is still far from a minimum and making steady progress; cutting
# the rate 10× there makes every later step 10× shorter, so the loss stalls where it was. A
# decay helps *once the optimizer is close to a minimum and bouncing around it* (noisy
# mini-batches, or a rate too large to settle): smaller steps then let it settle lower. Adam had
# already converged by epoch 500, so its schedule changes almost nothing. Decaying later (every
# 1,500 epochs) costs SGD much less; with full-batch gradients and no bouncing, a constant rate
# is hard to beat in this budget.

# %% [markdown]
# ## Summary
#
# * Backprop is the chain rule applied layer by layer from the loss down; every gradient has the
#   shape of its parameter, and `(P̂ − Y)/N` starts it all for softmax cross-entropy.
# * A gradient check (central differences, relative error per tensor) finds wrong gradients and
#   tells you *which* layer is wrong; a descent check finds a wrong update.
# * Held-out data comes in two roles: validation to choose, test to report once.
# * Adam converges far faster than plain SGD here; a learning-rate schedule helps only when its
#   timing fits the optimizer's progress.
#
# Next: **Lab 3** asks questions like these over many seeds, to tell real effects from luck.
