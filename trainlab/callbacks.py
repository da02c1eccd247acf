"""Hooks into the reference training loop (skorch-style), instead of flags threaded through it."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

from torch import nn

from trainlab.config import EarlyStoppingConfig

if TYPE_CHECKING:
    from trainlab.history import RunResult


class Callback:
    """Override any of these; ``on_epoch_end`` returns True to stop training."""

    def on_train_begin(self, model: nn.Module) -> None:
        pass

    def on_after_backward(self, model: nn.Module) -> None:
        pass

    def on_epoch_end(self, epoch: int, model: nn.Module, record: dict[str, float]) -> bool:
        return False

    def on_train_end(self, model: nn.Module, result: RunResult) -> None:
        pass


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta``.

    Keeps a copy of the best weights so the run can return them (``restore_best``).
    """

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        self.best = math.nan
        self.best_epoch = 0
        self.best_state: dict | None = None

    def improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_epoch == 0:
            return True
        if self.cfg.monitor == "val_loss":
            return value < self.best - self.cfg.min_delta
        return value > self.best + self.cfg.min_delta

    def on_epoch_end(self, epoch: int, model: nn.Module, record: dict[str, float]) -> bool:
        value = record[self.cfg.monitor]
        if self.improved(value):
            self.best, self.best_epoch = value, epoch
            if self.cfg.restore_best:
                self.best_state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.cfg.patience
