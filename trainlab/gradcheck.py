"""Gradient checking: is the hand-written backprop the derivative of the loss it computes?

Three derivatives of the same loss, side by side for every parameter tensor (notebook 004):
the analytic one of ``backprop.Backprop``, central differences ``(L(θ+ε) − L(θ−ε)) / 2ε`` in
float64, and autograd's. A fourth check catches what no gradient comparison can: a step along
the update must lower the loss (the ``+=`` bug of notebook 002 computes perfect gradients and
climbs).

``BUGS`` holds the notebook's planted bugs as subclasses of ``Backprop``, each overriding one
step of the derivation, so ``gradcheck(cfg, bug=NAME)`` runs the same check on buggy backprop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.backprop import Backprop, Params, dropout_masks
from trainlab.config import RunConfig, format_value
from trainlab.data import make_dataset
from trainlab.errors import BadInput
from trainlab.models import build_model, set_dropout_step

EPS = 1e-5  # central-difference step: truncation error ~ε², round-off ~1e-16/ε; both ~1e-11 here
TINY = 1e-6  # gradients smaller than this are float64 noise of the differences: judge them absolutely
THRESHOLD = 1e-4  # max relative error that passes: correct backprop gives < 1e-5, the planted bugs > 0.1
DESCENT_LR = 1e-3  # "a small step": small enough that the first-order change dominates


# ---------------------------------------------------------------------------- planted bugs


class TransposedFirstWeight(Backprop):
    """dW₁ computed as A₀ᵀ dZ₁ (the notebook's X.T @ dL_dz1), reshaped to fit W₁."""

    def dW(self, l: int, dZ: Tensor, A_prev: Tensor) -> Tensor:
        if l > 1:
            return super().dW(l, dZ, A_prev)
        return (A_prev.T @ dZ).reshape(dZ.shape[1], A_prev.shape[1])  # (d_0, d_1) forced into (d_1, d_0)


class MissingActivationDerivative(Backprop):
    """dZ = dA: the ⊙ f'(Z) of the chain rule through the activation is forgotten."""

    def dZ(self, l: int, dA: Tensor, Z: Tensor, A: Tensor) -> Tensor:
        return dA


class WrongProbabilities(Backprop):
    """The loss takes p̂[range(N)] (every class's probability) instead of p̂[range(N), y]."""

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        log_p_hat = self.log_probs(logits)
        N = y.shape[0]
        return -log_p_hat[range(N)].mean()


class AveragedBias(Backprop):
    """db = mean of dZ over the batch instead of the sum, dividing by N a second time."""

    def db(self, l: int, dZ: Tensor) -> Tensor:
        return dZ.mean(dim=0)


class UnnormalisedLogits(Backprop):
    """dL/dZ_L = p̂ − Y without the 1/N of the mean over the batch."""

    def dlogits(self, logits: Tensor, y: Tensor) -> Tensor:
        return super().dlogits(logits, y) * y.shape[0]


class GradientAscent(Backprop):
    """The update θ += η ∇θL (the notebook's W1 += learning_rate * dL_dW1): perfect gradients, uphill."""

    def sgd_step(self, params: Params, grads: Params, lr: float) -> Params:
        return {name: params[name] + lr * grads[name] for name in params}


BUGS: dict[str, type[Backprop]] = {
    "transposed-w1": TransposedFirstWeight,
    "no-activation-derivative": MissingActivationDerivative,
    "wrong-probabilities": WrongProbabilities,
    "bias-mean": AveragedBias,
    "no-batch-mean": UnnormalisedLogits,
    "gradient-ascent": GradientAscent,
}


def describe_bugs() -> dict[str, str]:
    return {name: (cls.__doc__ or "").strip() for name, cls in BUGS.items()}


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
    params: list[ParamCheck]
    descent: DescentCheck
    threshold: float
    eps: float
    shrunk_steps: int  # entries whose step shrank to stay off a ReLU kink
    n_samples: int
    architecture: str
    bug: str | None

    @property
    def wrong(self) -> list[str]:
        """The parameters whose gradient is wrong."""
        return [p.name for p in self.params if not p.ok]

    @property
    def ok(self) -> bool:
        return not self.wrong and self.descent.ok

    def show(self) -> None:
        """Print the check as ``trainlab gradcheck`` does (rich renders it in a notebook too)."""
        from rich.console import Console

        render(self, Console())


def relative_error(a: Tensor, n: Tensor, tiny: float = TINY) -> Tensor:
    """Elementwise |a − n| / max(|a| + |n|, tiny)."""
    return (a - n).abs() / (a.abs() + n.abs()).clamp_min(tiny)


def numerical_gradients(
    loss: Callable[[Params], tuple[float, Tensor]], params: Params, eps: float = EPS
) -> tuple[Params, int]:
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
    F.cross_entropy(model(X), y).backward()
    return {name: p.grad for name, p in model.named_parameters()}


def gradcheck(
    cfg: RunConfig | None = None,
    bug: str | None = None,
    seed: int = 0,
    n_samples: int = 16,
    eps: float = EPS,
    threshold: float = THRESHOLD,
) -> GradcheckResult:
    """Check the hand-written gradients of ``cfg.model`` on ``n_samples`` training rows of ``cfg.data``.

    With dropout, every derivative is taken of the loss under one fixed set of masks: those the
    model draws for the first minibatch of the first epoch.
    """
    cfg = cfg or RunConfig()
    if bug is not None and bug not in BUGS:
        raise BadInput(f"--bug {bug!r}: expected one of {', '.join(BUGS)} (see --list-bugs)")
    if n_samples < 1:
        raise BadInput(f"n_samples {n_samples}: expected at least 1 sample")
    if cfg.data.task == "regression":  # backprop.py differentiates cross-entropy
        raise BadInput("data.task = 'regression': gradcheck checks the cross-entropy backprop of classifiers")
    data = make_dataset(cfg.data)
    X = torch.tensor(data.X_train[:n_samples], dtype=torch.float64)
    y = torch.tensor(data.y_train[:n_samples])
    model = build_model(cfg.model, data.in_dim, data.n_classes, torch.Generator().manual_seed(seed), torch.float64)
    set_dropout_step(model, seed, epoch=1, step=0)  # autograd's forward draws the same masks
    params = {name: p.detach() for name, p in model.named_parameters()}

    bp = (BUGS[bug] if bug else Backprop)(cfg.model.activation, dropout_masks(model, len(y)))
    _, analytic = bp.loss_and_grads(params, X, y)
    def loss(p: Params) -> tuple[float, Tensor]:
        logits, _, Zs = bp.forward(p, X)
        return bp.loss(logits, y).item(), kink_sides(bp, Zs)

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
    return GradcheckResult(
        params=checks,
        descent=descent_check(bp, params, analytic, X, y),
        threshold=threshold,
        eps=eps,
        shrunk_steps=shrunk,
        n_samples=len(y),
        architecture="→".join(map(str, [data.in_dim, *cfg.model.hidden, data.n_classes]))
        + (f" {cfg.model.activation_label}" if cfg.model.hidden else " (logistic regression)")
        + (f", dropout {format_value(cfg.model.dropout)} (fixed masks)" if any(cfg.model.dropouts) else ""),
        bug=bug,
    )


def descent_check(bp: Backprop, params: Params, grads: Params, X: Tensor, y: Tensor, lr: float = DESCENT_LR) -> DescentCheck:
    """One update of ``bp`` with a small lr, judged by the true loss (not the one ``bp`` may have wrong)."""
    truth = Backprop(bp.activation, bp.masks)
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

    title = f"Gradient check: {result.architecture}, {result.n_samples} samples, float64, ε = {result.eps:g}"
    if result.bug:
        title += f"\nplanted bug {result.bug!r}: {escape(describe_bugs()[result.bug])}"
    table = Table(title=title, title_justify="left")
    table.add_column("parameter", no_wrap=True)
    table.add_column("shape", justify="right")
    table.add_column("max |a − n|", justify="right")
    table.add_column("rel err vs numerical", justify="right")
    table.add_column("rel err vs autograd", justify="right")
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
    console.print("a = backprop by hand, n = central differences; rel err = |a − n| / max(|a| + |n|, "
                  f"{TINY:g}), the worst entry of each tensor"
                  + (f"; {result.shrunk_steps} step{'s' if result.shrunk_steps > 1 else ''} shrunk to stay off a ReLU kink"
                     if result.shrunk_steps else ""))
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
