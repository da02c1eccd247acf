"""What happens inside a training run, per epoch: the measurements the debugging checklist reads.

``Diagnostics`` is a callback of the reference loop (``train(..., diagnostics=True)``; the doctor
turns it on) that fills ``RunResult.extra``
with one value per epoch and layer l = 1..L (layer l is the l-th Linear, W_l and b_l):

- ``grad_norm.l``     ‖∇(W_l, b_l)‖₂, mean over the epoch's steps (vanishing: layer 1 ≪ layer L)
- ``update_ratio.l``  ‖ΔW_l‖ / ‖W_l‖ of the epoch's first optimizer step (healthy ~1e-3)
- ``dead.l``          hidden ReLU units that output 0 for every training row (relu only)
- ``saturated.l``     hidden activations in a flat tail: σ < 0.01 or > 0.99, |tanh| > 0.99 (sigmoid/tanh only)
- ``dead``, ``saturated``  the same over all hidden units

Units are counted at the end of each epoch in one forward pass over the training rows; the
update ratio is sampled once per epoch because it needs a copy of the weights. Per step there is
one fused norm of the gradients. Overhead: ``python benchmarks/diagnostics_overhead.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import nn

from trainlab.callbacks import Callback
from trainlab.history import RunResult
from trainlab.models import linear_layers

SATURATED = {  # activation → is this output in the flat tail where f' ≈ 0?
    nn.Sigmoid: lambda a: (a < 0.01) | (a > 0.99),
    nn.Tanh: lambda a: a.abs() > 0.99,
}


class LayerGradNorms(Callback):
    """``epochs[e - 1][l - 1]`` = ‖∇(W_l, b_l)‖₂ of layer l, mean over epoch e's steps.

    One fused norm per step and one sync per epoch: cheap enough for the playground's live view,
    which shows these alone; ``Diagnostics`` records them with the rest of the checklist's numbers.
    """

    def on_train_begin(self, model: nn.Module) -> None:
        self.layers = linear_layers(model)
        self.epochs: list[list[float]] = []
        self.grad_norms: list[list[torch.Tensor]] = []  # this epoch, per step: ‖∇W_l‖, ‖∇b_l‖ for every layer

    @torch.no_grad()
    def on_after_backward(self, model: nn.Module) -> None:
        grads = [p.grad for linear in self.layers for p in (linear.weight, linear.bias)]
        self.grad_norms.append(torch._foreach_norm(grads))  # one fused op, as clip_grad_norm_ does

    def on_epoch_end(self, epoch: int, model: nn.Module, record: dict[str, float]) -> bool:
        self._end_epoch()
        return False

    def _end_epoch(self) -> None:
        norms = torch.stack([torch.stack(step) for step in self.grad_norms])  # (steps, 2L)
        self.epochs.append(norms.pow(2).view(len(norms), -1, 2).sum(dim=2).sqrt().mean(dim=0).tolist())
        self.grad_norms = []


class Diagnostics(LayerGradNorms):
    def __init__(self, X_train: torch.Tensor) -> None:
        self.X_train = X_train
        self.extra: dict[str, list[float]] = defaultdict(list)

    def on_train_begin(self, model: nn.Module) -> None:
        super().on_train_begin(model)
        self._start_epoch()

    def _start_epoch(self) -> None:
        self.before: list[torch.Tensor] | None = None  # the weights before the epoch's first step
        self.update_ratios: list[float] = []

    @torch.no_grad()
    def _record_first_step(self) -> None:
        if self.before is not None and not self.update_ratios:
            weights = [linear.weight for linear in self.layers]
            updates = torch._foreach_norm(torch._foreach_sub(weights, self.before))
            self.update_ratios = (torch.stack(updates) / torch.stack(torch._foreach_norm(self.before))).tolist()

    @torch.no_grad()
    def on_after_backward(self, model: nn.Module) -> None:
        self._record_first_step()
        super().on_after_backward(model)
        if self.before is None:
            self.before = [linear.weight.clone() for linear in self.layers]

    def on_epoch_end(self, epoch: int, model: nn.Module, record: dict[str, float]) -> bool:
        self._record_first_step()
        self._flush(model)
        return False

    def _flush(self, model: nn.Module) -> None:
        """Turn the epoch's per-step tensors into one float per key (one sync, at epoch end)."""
        self._end_epoch()
        for l, norm in enumerate(self.epochs[-1], start=1):
            self.extra[f"grad_norm.{l}"].append(norm)
            self.extra[f"update_ratio.{l}"].append(self.update_ratios[l - 1] if self.update_ratios else math.nan)
        self._record_units(model)
        self._start_epoch()

    @torch.no_grad()
    def _record_units(self, model: nn.Module) -> None:
        """Dead and saturated hidden units of the model as it is now, on every training row."""
        A, l, dead, saturated = self.X_train, 0, {}, {}
        for module in model:
            A = module(A)
            l += isinstance(module, nn.Linear)  # A is now Z_l, or A_l after the activation
            if isinstance(module, nn.ReLU):
                dead[l] = (A.amax(dim=0) <= 0).sum().item(), A.shape[1]
            elif type(module) in SATURATED:
                saturated[l] = SATURATED[type(module)](A).sum().item(), A.numel()
        for key, counts in (("dead", dead), ("saturated", saturated)):
            for l, (count, total) in counts.items():
                self.extra[f"{key}.{l}"].append(count / total)
            if counts:
                self.extra[key].append(sum(c for c, _ in counts.values()) / sum(t for _, t in counts.values()))

    def on_train_end(self, model: nn.Module, result: RunResult) -> None:
        if self.grad_norms:  # an epoch the loop left without on_epoch_end (diverged)
            self._flush(model)
        result.extra.update(self.extra)
