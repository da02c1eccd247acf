"""What a run leaves behind: per-epoch history as data, its status, and the summary row of runs.csv."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from trainlab.config import RunSpec
from trainlab.models import model_from_params

HISTORY_COLUMNS = ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "grad_norm")
SUMMARY_COLUMNS = (
    "status",
    "epochs_run",
    "best_epoch",
    "final_train_loss",
    "final_val_loss",
    "final_train_acc",
    "final_val_acc",
    "best_val_acc",
    "test_acc",
    "seconds",
)
STATUSES = ("ok", "early_stopped", "diverged")


@dataclass
class RunResult:
    """One finished run. ``history[c][e - 1]`` is column ``c`` at epoch ``e``."""

    spec: RunSpec
    history: dict[str, list[float]]
    status: str
    best_epoch: int
    final_epoch: int  # the epoch whose weights the run returns (best_epoch when restored)
    test_acc: float | None
    params: dict[str, np.ndarray] = field(repr=False)  # final weights, state-dict names
    seconds: float = 0.0
    extra: dict[str, list[float]] = field(default_factory=dict, repr=False)  # diagnostics

    def model(self) -> nn.Sequential:
        """The trained network (float64, eval mode), rebuilt from the returned weights."""
        return model_from_params(self.spec.config.model, self.params)

    @property
    def epochs_run(self) -> int:
        return len(self.history["train_loss"])

    def summary(self) -> dict[str, Any]:
        at = self.final_epoch - 1
        h = self.history
        return {
            "status": self.status,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "final_train_loss": h["train_loss"][at],
            "final_val_loss": h["val_loss"][at],
            "final_train_acc": h["train_acc"][at],
            "final_val_acc": h["val_acc"][at],
            "best_val_acc": _nanmax(h["val_acc"]),
            "test_acc": self.test_acc,
            "seconds": self.seconds,
        }


def new_history() -> dict[str, list[float]]:
    return {c: [] for c in HISTORY_COLUMNS}


def best_epoch(values: list[float], monitor: str = "val_loss", min_delta: float = 0.0) -> int:
    """The epoch (from 1) of the last improvement by more than ``min_delta``; NaN never improves."""
    best, best_at = math.nan, 0
    for epoch, v in enumerate(values, start=1):
        if not math.isfinite(v):
            continue
        improved = (
            best_at == 0
            or (monitor == "val_loss" and v < best - min_delta)
            or (monitor == "val_acc" and v > best + min_delta)
        )
        if improved:
            best, best_at = v, epoch
    return best_at or 1


def _nanmax(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else math.nan
