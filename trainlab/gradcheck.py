"""Gradient checking: is the hand-written backprop the derivative of the loss it computes?

Three derivatives of the same loss, side by side for every parameter tensor (notebook 004):
the analytic one of ``backprop.Backprop``, central differences ``(L(θ+ε) − L(θ−ε)) / 2ε`` in
float64, and autograd's. A fourth check catches what no gradient comparison can: a step along
the update must lower the loss (the ``+=`` bug of notebook 002 computes perfect gradients and
climbs). Classifiers are checked on cross-entropy, regressions (any number of outputs, one
included) on the mean squared error; ``course_004=True`` checks the course's own TinyNet.

``BUGS`` holds planted bugs as subclasses of ``Backprop``, each overriding one step of the
derivation, so ``gradcheck(cfg, bug=NAME)`` runs the same check on buggy backprop. Three are the
course notebook's own lines; the others are classic slips of the same derivation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainlab.backprop import Backprop, Params, ShapeError, dropout_masks, weight
from trainlab.config import RunConfig, format_value
from trainlab.data import make_dataset
from trainlab.errors import BadInput
from trainlab.models import build_model, set_dropout_step
from trainlab.threads import small_model_threads
from trainlab.train import loss_fn

EPS = 1e-5  # central-difference step: truncation error ~ε², round-off ~1e-16/ε; both ~1e-11 here
TINY = 1e-6  # gradients smaller than this are float64 noise of the differences: judge them absolutely
THRESHOLD = 1e-4  # max relative error that passes: correct backprop gives < 1e-5, the planted bugs > 0.1
DESCENT_LR = 1e-3  # "a small step": small enough that the first-order change dominates


# ---------------------------------------------------------------------------- planted bugs


class SwappedFirstWeight(Backprop):
    """W1 = torch.randn(h, k) (notebook 002's line): W₁ made with its two dimensions swapped, so layer 1 cannot multiply its inputs."""

    # The notebook stores W₁ as (d_0, d_1) = (k, h) for z1 = X @ W1 and creates it as (h, k); here,
    # in nn.Linear's layout (d_1, d_0), the same slip makes it (d_0, d_1). With d_0 = d_1 the shapes
    # fit and the slip is a silent transpose, which only the comparison with autograd can see.
    def parameters(self, model: nn.Module) -> Params:
        params = super().parameters(model)
        return {**params, weight(1): params[weight(1)].T.contiguous()}


class MissingActivationDerivative(Backprop):
    """dZ = dA: the ⊙ f'(Z) of the chain rule through the activation is forgotten."""

    def dZ(self, l: int, dA: Tensor, Z: Tensor, A: Tensor) -> Tensor:
        return dA


class WrongProbabilities(Backprop):
    """The loss takes p̂[range(N)] (every class's probability) instead of p̂[range(N), y] (notebook 002's loss_fn)."""

    losses = ("cross_entropy",)

    def loss(self, outputs: Tensor, y: Tensor) -> Tensor:
        log_p_hat = self.log_probs(outputs)
        N = y.shape[0]
        return -log_p_hat[range(N)].mean()


class AveragedBias(Backprop):
    """db = mean of dZ over the batch instead of the sum, dividing by N a second time."""

    def db(self, l: int, dZ: Tensor) -> Tensor:
        return dZ.mean(dim=0)


class UnnormalisedLogits(Backprop):
    """dL/dZ_L without the 1/N of the mean over the batch (p̂ − Y, or 2 (Z_L − Y) for MSE)."""

    def dlogits(self, outputs: Tensor, y: Tensor) -> Tensor:
        return super().dlogits(outputs, y) * y.shape[0]


class GradientAscent(Backprop):
    """W1 += learning_rate * dL_dW1 (notebook 002's update): θ += η ∇θL, perfect gradients, uphill."""

    def sgd_step(self, params: Params, grads: Params, lr: float) -> Params:
        return {name: params[name] + lr * grads[name] for name in params}


BUGS: dict[str, type[Backprop]] = {
    "w1-shape": SwappedFirstWeight,
    "no-activation-derivative": MissingActivationDerivative,
    "wrong-probabilities": WrongProbabilities,
    "bias-mean": AveragedBias,
    "no-batch-mean": UnnormalisedLogits,
    "gradient-ascent": GradientAscent,
}


def describe_bugs() -> dict[str, str]:
    return {name: (cls.__doc__ or "").strip() for name, cls in BUGS.items()}


def bug_losses(name: str) -> tuple[str, ...]:
    """The losses a planted bug can be planted in (the probability bug needs probabilities)."""
    return BUGS[name].losses


# ---------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class ParamCheck:
    name: str
    shape: tuple[int, ...]
    max_abs: float  # max |analytic − numerical|
    rel_numerical: float  # max relative error, analytic vs numerical
    rel_autograd: float  # max relative error, analytic vs autograd
    threshold: float

    @property
    def ok(self) -> bool:
        return self.rel_numerical < self.threshold and self.rel_autograd < self.threshold


@dataclass(frozen=True)
class DescentCheck:
    lr: float
    loss_before: float
    loss_after: float

    @property
    def ok(self) -> bool:
        return self.loss_after < self.loss_before


@dataclass(frozen=True)
class GradcheckResult:
    params: list[ParamCheck]  # empty when the forward pass could not run
    descent: DescentCheck | None  # None when the forward pass could not run
    threshold: float
    eps: float
    shrunk_steps: int  # entries whose step shrank to stay off a ReLU kink
    n_samples: int
    architecture: str
    bug: str | None
    loss: str = "cross_entropy"  # or "mse"
    shape_error: str | None = None  # why the forward pass could not run (weights that do not fit)

    @property
    def wrong(self) -> list[str]:
        """The parameters whose gradient is wrong."""
        return [p.name for p in self.params if not p.ok]

    @property
    def ok(self) -> bool:
        return self.shape_error is None and not self.wrong and self.descent.ok

    def show(self) -> None:
        """Print the check as ``trainlab gradcheck`` does (rich renders it in a notebook too)."""
        from rich.console import Console

        render(self, Console())


def relative_error(a: Tensor, n: Tensor, tiny: float = TINY) -> Tensor:
    """Elementwise |a − n| / max(|a| + |n|, tiny)."""
    return (a - n).abs() / (a.abs() + n.abs()).clamp_min(tiny)


def numerical_gradients(loss: Callable[[Params], tuple[float, Tensor]], params: Params,
                        eps: float = EPS) -> tuple[Params, int]:
    """Central differences, one parameter entry at a time, and how many steps had to shrink.

    ``loss`` returns the loss and which side of each kink (ReLU's 0) the units are on. ReLU is
    not differentiable at 0: where θ ± ε puts a unit on both sides, the difference measures the
    kink, not the slope, so the step shrinks (÷10, up to 4 times) until both sides agree.
    """
    params = {name: p.clone() for name, p in params.items()}
    grads, shrunk = {}, 0
    for name, theta in params.items():
        flat, g = theta.view(-1), torch.zeros(theta.numel(), dtype=theta.dtype)
        for i in range(theta.numel()):
            original = flat[i].item()
            for h in (eps * 10.0**-k for k in range(5)):
                flat[i] = original + h
                up, up_sides = loss(params)
                flat[i] = original - h
                down, down_sides = loss(params)
                if torch.equal(up_sides, down_sides):
                    break
            shrunk += h != eps
            flat[i] = original
            g[i] = (up - down) / (2 * h)
        grads[name] = g.view_as(theta)
    return grads, shrunk


def kink_sides(bp: Backprop, Zs: list[Tensor]) -> Tensor:
    """Which side of 0 each hidden unit is on, for the activations with a kink there."""
    sides = [(Z > 0).flatten() for l, Z in enumerate(Zs[:-1], start=1) if bp.act(l).kink]
    return torch.cat(sides) if sides else torch.empty(0, dtype=torch.bool)


def autograd_grads(model: torch.nn.Module, X: Tensor, y: Tensor) -> Params:
    """The gradients of the same loss by autograd, on the model the parameters came from."""
    model.zero_grad()
    loss_fn(model(X), y).backward()
    return {name: p.grad for name, p in model.named_parameters()}


def gradcheck(cfg: RunConfig | None = None, bug: str | None = None, seed: int = 0, n_samples: int = 16,
              eps: float = EPS, threshold: float = THRESHOLD, course_004: bool = False) -> GradcheckResult:
    """Check the hand-written gradients of ``cfg.model`` on ``n_samples`` training rows of ``cfg.data``.

    A classifier is checked on cross-entropy, a regression (``data.task = "regression"``) on the
    mean squared error. ``course_004``: instead of ``cfg``, the course's TinyNet (``course_tinynet``).
    With dropout, every derivative is taken of the loss under one fixed set of masks: those the
    model draws for the first minibatch of the first epoch.
    """
    if bug is not None and bug not in BUGS:
        raise BadInput(f"--bug {bug!r}: expected one of {', '.join(BUGS)} (see --list-bugs)")
    if course_004:
        if cfg is not None:
            raise BadInput("course_004 checks the course's own TinyNet: it takes no config")
        model, X, y = course_tinynet()
        activation, architecture = "tanh", "2→2→1 tanh (the course's TinyNet, seed 0), MSE"
    else:
        cfg = cfg or RunConfig()
        if n_samples < 1:
            raise BadInput(f"n_samples {n_samples}: expected at least 1 sample")
        data = make_dataset(cfg.data)
        X = torch.tensor(data.X_train[:n_samples], dtype=torch.float64)
        y = torch.tensor(data.y_train[:n_samples], dtype=torch.float64 if data.regression else torch.int64)
        model = build_model(cfg.model, data.in_dim, data.n_classes, torch.Generator().manual_seed(seed), torch.float64)
        set_dropout_step(model, seed, epoch=1, step=0)  # autograd's forward draws the same masks
        activation = cfg.model.activation
        architecture = ("→".join(map(str, [data.in_dim, *cfg.model.hidden, data.n_classes]))
                        + (f" {cfg.model.activation_label}" if cfg.model.hidden else " (linear)" if data.regression
                           else " (logistic regression)")
                        + (f", dropout {format_value(cfg.model.dropout)} (fixed masks)" if any(cfg.model.dropouts)
                           else "")
                        + (", MSE" if data.regression else ""))
    loss_name = "mse" if y.is_floating_point() else "cross_entropy"
    if bug is not None and loss_name not in bug_losses(bug):
        raise BadInput(f"--bug {bug}: a bug of the cross-entropy loss; this check is on the mean squared error "
                       "(data.task = 'regression')")
    bp = (BUGS[bug] if bug else Backprop)(activation, loss_name, dropout_masks(model, len(X)))
    with small_model_threads(sum(p.numel() for p in model.parameters()), len(X)):  # many forward passes
        return check(bp, model, X, y, eps, threshold, architecture, bug)


def course_tinynet() -> tuple[nn.Sequential, Tensor, Tensor]:
    """Course 004's gradient check: its TinyNet, input and target, in float64.

    TinyNet is Linear(2, 2) → tanh → Linear(2, 1) made right after ``torch.manual_seed(0)``: torch's
    default init drawn from a generator seeded 0, which ``build_model``'s "default" init reproduces
    draw for draw (float32 weights, then widened to float64 exactly). One input (0.5, −1), target 1,
    loss ``nn.MSELoss()``.
    """
    from trainlab.config import ModelConfig

    model = build_model(ModelConfig(hidden=[2], activation="tanh"), 2, 1, torch.Generator().manual_seed(0))
    X = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    y = torch.tensor([1.0], dtype=torch.float64)
    return model.double(), X, y


def check(bp: Backprop, model: nn.Module, X: Tensor, y: Tensor, eps: float = EPS, threshold: float = THRESHOLD,
          architecture: str = "", bug: str | None = None) -> GradcheckResult:
    """``bp``'s gradients of its loss at ``model``'s weights on the batch ``X, y``, against central
    differences and autograd, and the descent check of its update."""
    params = bp.parameters(model)
    about = dict(threshold=threshold, eps=eps, n_samples=len(y), architecture=architecture, bug=bug, loss=bp.loss_name)
    try:
        _, analytic = bp.loss_and_grads(params, X, y)
    except ShapeError as e:
        return GradcheckResult(params=[], descent=None, shrunk_steps=0, shape_error=str(e), **about)

    def loss(p: Params) -> tuple[float, Tensor]:
        outputs, _, Zs = bp.forward(p, X)
        return bp.loss(outputs, y).item(), kink_sides(bp, Zs)

    numerical, shrunk = numerical_gradients(loss, params, eps)
    autograd = autograd_grads(model, X, y)
    checks = [
        ParamCheck(
            name=name,
            shape=tuple(params[name].shape),
            max_abs=(analytic[name] - numerical[name]).abs().max().item(),
            rel_numerical=relative_error(analytic[name], numerical[name]).max().item(),
            rel_autograd=relative_error(analytic[name], autograd[name]).max().item(),
            threshold=threshold,
        )
        for name in params
    ]
    return GradcheckResult(params=checks, descent=descent_check(bp, params, analytic, X, y), shrunk_steps=shrunk,
                           **about)


def descent_check(bp: Backprop, params: Params, grads: Params, X: Tensor, y: Tensor,
                  lr: float = DESCENT_LR) -> DescentCheck:
    """One update of ``bp`` with a small lr, judged by the true loss (not the one ``bp`` may have wrong)."""
    truth = Backprop(bp.activation, bp.loss_name, bp.masks)
    before = truth.loss(truth.forward(params, X)[0], y).item()
    stepped = bp.sgd_step(params, grads, lr)
    after = truth.loss(truth.forward(stepped, X)[0], y).item()
    return DescentCheck(lr=lr, loss_before=before, loss_after=after)


# ---------------------------------------------------------------------------- the scalar demo of notebook 000


@dataclass(frozen=True)
class ScalarDemo:
    x: float
    y: float
    analytic: float
    numerical: float
    autograd: float


def scalar_demo(x: float = 1.5, h: float = 1e-6) -> ScalarDemo:
    """y = (3x + 2)² / 2: dy/dx by the chain rule, by central differences and by autograd."""

    def f(v):
        return (3 * v + 2) ** 2 / 2

    analytic = 3 * (3 * x + 2)  # dy/du · du/dx with u = 3x + 2: u · 3
    numerical = (f(x + h) - f(x - h)) / (2 * h)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    f(t).backward()
    return ScalarDemo(x=x, y=f(x), analytic=analytic, numerical=numerical, autograd=t.grad.item())


# ---------------------------------------------------------------------------- what a person reads


def math_name(name: str) -> str:
    """``2.weight`` → ``W2``: the state-dict name in the notation of the derivation."""
    index, kind = name.split(".")
    return f"{'W' if kind == 'weight' else 'b'}{int(index) // 2 + 1}"


def render(result: GradcheckResult, console) -> None:
    """The check as a rich table, the descent check and a verdict naming what is wrong."""
    from rich.markup import escape
    from rich.table import Table

    samples = f"{result.n_samples} sample{'s' if result.n_samples > 1 else ''}"
    title = f"Gradient check: {result.architecture}, {samples}, float64, ε = {result.eps:g}"
    if result.bug:
        title += f"\nplanted bug {result.bug!r}: {escape(describe_bugs()[result.bug])}"
    if result.shape_error:
        console.print(title, highlight=False)
        console.print(f"[red bold]FAIL[/]: the forward pass cannot run: {escape(result.shape_error)}.", highlight=False)
        return
    table = Table(title=title, title_justify="left")
    table.add_column("parameter", no_wrap=True)
    for numbers in ("shape", "max |a − n|", "rel err vs numerical", "rel err vs autograd"):
        table.add_column(numbers, justify="right")
    table.add_column(f"< {result.threshold:g}", no_wrap=True)
    for p in result.params:
        table.add_row(
            f"{p.name} ({math_name(p.name)})",
            "×".join(map(str, p.shape)),
            f"{p.max_abs:.2e}",
            f"{p.rel_numerical:.2e}",
            f"{p.rel_autograd:.2e}",
            "[green]ok[/]" if p.ok else "[red bold]WRONG[/]",
        )
    console.print(table)
    shrunk = result.shrunk_steps
    console.print("a = backprop by hand, n = central differences; rel err = |a − n| / max(|a| + |n|, "
                  f"{TINY:g}), the worst entry of each tensor"
                  + (f"; {shrunk} step{'s' if shrunk > 1 else ''} shrunk to stay off a ReLU kink" if shrunk else ""))
    d = result.descent
    verdict = "[green]downhill ok[/]" if d.ok else "[red bold]UPHILL[/]"
    console.print(f"Descent check: one update with lr = {d.lr:g} takes the loss from {d.loss_before:.8f} "
                  f"to {d.loss_after:.8f}: {verdict}")
    if result.ok:
        console.print(f"[green bold]PASS[/]: every gradient agrees with central differences and autograd "
                      f"(relative error < {result.threshold:g}) and the update goes downhill.")
        return
    if result.wrong:
        names = ", ".join(f"{n} ({math_name(n)})" for n in result.wrong)
        console.print(f"[red bold]FAIL[/]: wrong gradient for {names}.")
    if not d.ok:
        console.print("[red bold]FAIL[/]: the update raises the loss: it should step against the gradient, "
                      "θ ← θ − η∇L.")
