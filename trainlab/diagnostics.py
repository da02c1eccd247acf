"""What happens inside a training run, per epoch: the measurements the debugging checklist reads.

The reference loop (unless ``diagnostics=False``) fills ``RunResult.extra`` with one value per epoch
and layer l = 1..L (the l-th Linear, W_l and b_l):

- ``grad_norm.l``     ‖∇(W_l, b_l)‖₂, mean over the epoch's steps (vanishing: layer 1 ≪ layer L)
- ``update_ratio.l``  ‖ΔW_l‖ / ‖W_l‖ of the epoch's first optimizer step (healthy ~1e-3)
- ``dead.l``          hidden ReLU units that output 0 for every training row (relu only)
- ``saturated.l``     hidden activations in a flat tail: σ < 0.01 or > 0.99, |tanh| > 0.99 (sigmoid/tanh only)
- ``dead``, ``saturated``  the same over the hidden layers of those activations

The gradient norms are those the history's ``grad_norm`` is summed from and the units are counted
on the loop's end-of-epoch evaluation of the training rows; only the update ratio, which needs a copy
of the weights, costs extra, so it is sampled on one step an epoch.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn
from torch.linalg import vector_norm

from trainlab.activations import activation_of_layer
from trainlab.callbacks import Callback, Run
from trainlab.models import linear_layers

# activation → (key, which entries of its output A (rows × units) are stuck where f' ≈ 0, as 1s and 0s).
# Sigmoid and tanh outputs a lie in [0, 1] and [-1, 1], so ceil(a − 0.99) is 1 exactly when a > 0.99:
# the comparison without writing a bool tensor, the slow op here. NaN outputs (a diverged run) stay NaN.
STUCK = {
    "relu": ("dead", lambda A: A.amax(dim=0) <= 0),  # per unit: 0 on every row
    "sigmoid": ("saturated", lambda A: (A - 0.99).ceil_().add_((0.01 - A).ceil_())),  # σ > 0.99 or σ < 0.01
    "tanh": ("saturated", lambda A: A.abs().sub_(0.99).ceil_()),  # |tanh| > 0.99
}


class Diagnostics(Callback):
    """The hook that records the measurements above into ``extra``, epoch by epoch."""

    def __init__(self, model: nn.Sequential) -> None:
        self.weights = [linear.weight for linear in linear_layers(model)]
        self.before = [torch.empty_like(w) for w in self.weights]  # the weights before the sampled step
        self.extra: dict[str, list[float]] = defaultdict(list)
        self.update_ratio: torch.Tensor | None = None  # this epoch's, per layer

    def on_step_begin(self, run: Run, step: int) -> None:
        if step == 0:  # the sampled step only: entering no_grad costs time
            with torch.no_grad():
                for before, w in zip(self.before, self.weights):
                    before.copy_(w)

    def on_step_end(self, run: Run, step: int) -> None:
        if step == 0:  # ‖ΔW_l‖ / ‖W_l‖ of the step, for every layer
            with torch.no_grad():
                changes = [vector_norm(w - before) for w, before in zip(self.weights, self.before)]
                self.update_ratio = torch.stack(changes) / torch.stack([vector_norm(b) for b in self.before])

    def on_epoch_end(self, run: Run) -> bool:
        """Record the epoch's gradient norms, and the units stuck in ``run.hidden``: each hidden layer's
        activation module and its output A_l on every training row, each judged by its own activation."""
        layer_grad_norms = run.grad_squares.sqrt().mean(dim=0)  # per layer, mean over the epoch's steps
        for l, (norm, ratio) in enumerate(zip(layer_grad_norms.tolist(), self.update_ratio.tolist()), start=1):
            self.extra[f"grad_norm.{l}"].append(norm)
            self.extra[f"update_ratio.{l}"].append(ratio)
        by_key: dict[str, list[tuple[int, torch.Tensor]]] = defaultdict(list)  # key → (layer, stuck)
        for l, (module, A) in enumerate(run.hidden, start=1):
            activation = activation_of_layer(module)
            if activation in STUCK:
                key, is_stuck = STUCK[activation]
                by_key[key].append((l, is_stuck(A)))
        for key, layers in by_key.items():
            counts = torch.stack([s.sum() for _, s in layers]).tolist()
            for (l, s), count in zip(layers, counts):
                self.extra[f"{key}.{l}"].append(count / s.numel())
            self.extra[key].append(sum(counts) / sum(s.numel() for _, s in layers))
        return False
