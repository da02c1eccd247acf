"""Hooks into the reference training loop (skorch-style): what the loop does besides training.

A hook is called at named points of ``train.Training.epochs`` with the run itself, and reads what
it needs of it (the model, the history, the epoch's gradient norms). Two exist: early stopping
(here) and the diagnostics (``trainlab.diagnostics``).
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import nn

from trainlab.config import EarlyStoppingConfig
from trainlab.history import improves


class Run(Protocol):
    """What a hook reads of the run that calls it (a ``train.Training``)."""

    model: nn.Sequential
    epoch: int  # from 1
    status: str  # ok | early_stopped | diverged
    history: dict[str, list[float]]  # a list per history column, one value per epoch so far
    grad_squares: torch.Tensor  # (steps, layers): ‖∇(W_l, b_l)‖² of the epoch's steps
    hidden: list[tuple[nn.Module, torch.Tensor]]  # each hidden layer's output on the train rows


class Callback:
    """Override any of these; ``on_epoch_end`` returns True to stop training."""

    def on_step_begin(self, run: Run, step: int) -> None:
        """Before the optimizer's step ``step`` (from 0) of the epoch, the gradients computed."""

    def on_step_end(self, run: Run, step: int) -> None:
        """After the optimizer's step ``step`` of the epoch."""

    def on_epoch_end(self, run: Run) -> bool:
        """After the epoch's evaluation, its record in ``run.history``."""
        return False


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta``.

    Keeps a copy of the best weights so the run can return them (``restore_best``). The epochs of
    a diverged run are never the best.
    """

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        self.best = float("nan")
        self.best_epoch = 0
        self.best_state: dict | None = None

    def on_epoch_end(self, run: Run) -> bool:
        if run.status == "diverged":
            return False
        value = run.history[self.cfg.monitor][-1]
        if improves(value, self.best, self.cfg.monitor, self.cfg.min_delta):
            self.best, self.best_epoch = value, run.epoch
            if self.cfg.restore_best:
                self.best_state = copy.deepcopy(run.model.state_dict())
        return run.epoch - self.best_epoch >= self.cfg.patience
