"""What a run leaves behind: per-epoch history as data, its status, and the summary row of runs.csv."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from trainlab import metrics
from trainlab.config import RunSpec
from trainlab.metrics import SUMMARY_METRICS, RunMetrics
from trainlab.models import model_from_params

HISTORY_COLUMNS = ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "grad_norm")
FINAL_COLUMNS = ("train_loss", "val_loss", "train_acc", "val_acc")  # in the summary as final_<column>
# The columns of runs.csv after the run's id and grid values; SUMMARY_METRICS: val_macro_f1 and
# test_macro_f1 (classification) or val_rmse, ..., test_r2 (regression).
SUMMARY_COLUMNS = ("status", "epochs_run", "best_epoch", *(f"final_{c}" for c in FINAL_COLUMNS), "best_val_acc",
                   "test_acc", *SUMMARY_METRICS, "seconds")
# pruned: stopped by a search (successive halving) at a rung, its history up to there
STATUSES = ("ok", "early_stopped", "diverged", "pruned")


@dataclass
class RunResult:
    """One finished run. ``history[c][e - 1]`` is column ``c`` at epoch ``e`` (see ``History``)."""

    spec: RunSpec
    history: History
    status: str
    best_epoch: int
    final_epoch: int  # the epoch whose weights the run returns (best_epoch when restored)
    test_acc: float | None
    params: dict[str, np.ndarray] = field(repr=False)  # final weights, state-dict names
    seconds: float = 0.0
    extra: dict[str, list[float]] = field(default_factory=dict, repr=False)  # diagnostics
    # the returned model's metrics on the val and test splits (``trainlab.metrics``): per class and
    # the confusion matrix for classification, RMSE, MAE and R² for regression
    metrics: RunMetrics | None = field(default=None, repr=False)

    def model(self) -> nn.Sequential:
        """The trained network (float64, eval mode), rebuilt from the returned weights."""
        return model_from_params(self.spec.config.model, self.params)

    @property
    def epochs_run(self) -> int:
        return len(self.history["train_loss"])

    def summary(self) -> dict[str, Any]:
        """The run's row of runs.csv: ``SUMMARY_COLUMNS``."""
        return {
            "status": self.status,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            **{f"final_{c}": float(self.history[c][self.final_epoch - 1]) for c in FINAL_COLUMNS},
            "best_val_acc": float(np.fmax.reduce(self.history["val_acc"], initial=math.nan)),  # NaN if no epoch has one
            "test_acc": self.test_acc,
            **metrics.summary(self.metrics, self.spec.config.data.task),
            "seconds": self.seconds,
        }


# A run's history, in every place one is handed over (a RunResult, the store, the report): the
# epochs (1, 2, ...) and one float64 array per column of HISTORY_COLUMNS, one value per epoch.
History = dict[str, np.ndarray]


def as_history(columns: dict[str, list[float]] | np.ndarray) -> History:
    """A ``History`` from recorded columns, or from a (epochs, HISTORY_COLUMNS) table."""
    if isinstance(columns, np.ndarray):
        values = dict(zip(HISTORY_COLUMNS, columns.T.copy()))  # copies: no view keeps a whole batch alive
    else:
        values = {c: np.asarray(columns[c], dtype=np.float64) for c in HISTORY_COLUMNS}
    return {"epoch": np.arange(1, len(values[HISTORY_COLUMNS[0]]) + 1), **values}


# A run has diverged when its train loss is no longer finite, or is above this many times the
# untrained model's: the weights are lost, and the epochs left would only record noise.
DIVERGENCE_FACTOR = 100.0


def divergence_limit(untrained_loss: float) -> float:
    """The train loss past which a run has diverged: DIVERGENCE_FACTOR × the untrained model's, and
    finite (an infinite loss is past it, whatever the untrained model's, even NaN or infinite)."""
    limit = DIVERGENCE_FACTOR * untrained_loss
    return limit if limit <= sys.float_info.max else sys.float_info.max


def diverged(train_loss, limit):
    """Whether an epoch's train loss means divergence: NaN, or past ``divergence_limit``. Python
    floats give a bool; float64 tensors (one entry per model) give one per entry."""
    within = train_loss <= limit
    return not within if isinstance(within, bool) else ~within


def improves(value, best, monitor: str = "val_loss", min_delta: float = 0.0):
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (lower val_loss, higher val_acc).

    ``best`` is NaN until there is one, and any finite value beats that; a value that is not finite
    never improves. Python floats give a bool; tensors (one entry per model) give one per entry.
    """
    better = value < best - min_delta if monitor == "val_loss" else value > best + min_delta
    finite = (value == value) & (abs(value) != math.inf)  # NaN is the one value unequal to itself
    return finite & ((best != best) | better)


def best_epoch(values: list[float], monitor: str = "val_loss", min_delta: float = 0.0) -> int:
    """The epoch (from 1) of the last improvement by more than ``min_delta``; NaN never improves."""
    best, best_at = math.nan, 0
    for epoch, v in enumerate(values, start=1):
        if improves(v, best, monitor, min_delta):
            best, best_at = v, epoch
    return best_at or 1


class RunBatch(Sequence):
    """The finished runs of one population as arrays: what the population engine returns.

    A sequence of ``RunResult`` built on demand (``batch[i]``), so code that wants runs one at a
    time gets them, while the store writes a whole batch from its arrays without creating a Python
    object per run or per history value. ``history[i, e]`` holds run i's record of epoch e + 1 in
    ``HISTORY_COLUMNS`` order (NaN after its last epoch); ``params[i]`` its final weights, laid
    out as ``state_dict(row)`` reads them.
    """

    def __init__(self, specs: list[RunSpec], history: np.ndarray, params: np.ndarray,
                 state_dict: Callable[[np.ndarray], dict[str, np.ndarray]], has_test: bool):
        k = len(specs)
        self.specs, self.history, self.params, self.state_dict = specs, history, params, state_dict
        self.status = np.zeros(k, np.int8)  # index into STATUSES
        self.epochs_run = np.zeros(k, np.int64)
        self.best_epoch = np.zeros(k, np.int64)
        self.final_epoch = np.zeros(k, np.int64)
        self.test_acc = np.full(k, np.nan) if has_test else None
        self.metrics: list[RunMetrics | None] = [None] * k
        self.seconds = np.zeros(k)  # each run's share of its slice's training time

    def take(self, index: np.ndarray) -> RunBatch:
        """The runs ``index``, as a batch of their own (copies)."""
        part = RunBatch([self.specs[i] for i in index], self.history[index], self.params[index], self.state_dict,
                        has_test=self.test_acc is not None)
        for name in ("status", "epochs_run", "best_epoch", "final_epoch", "seconds", "test_acc"):
            if getattr(self, name) is not None:  # test_acc is None without a test split
                getattr(part, name)[:] = getattr(self, name)[index]
        part.metrics = [self.metrics[i] for i in index]
        return part

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        n = int(self.epochs_run[i])
        return RunResult(
            spec=self.specs[i],
            history=as_history(self.history[i, :n]),
            status=STATUSES[self.status[i]],
            best_epoch=int(self.best_epoch[i]),
            final_epoch=int(self.final_epoch[i]),
            test_acc=None if self.test_acc is None else float(self.test_acc[i]),
            params=self.state_dict(self.params[i]),
            seconds=float(self.seconds[i]),
            metrics=self.metrics[i],
        )

    def summaries(self) -> dict[str, list]:
        """``RunResult.summary()`` of every run, as one list per column (vectorized)."""
        k = len(self)
        final = self.history[np.arange(k), self.final_epoch - 1]  # (K, columns)
        col = {c: i for i, c in enumerate(HISTORY_COLUMNS)}
        runs_metrics = [metrics.summary(m, s.config.data.task) for m, s in zip(self.metrics, self.specs)]
        return {
            "status": [STATUSES[s] for s in self.status.tolist()],
            "epochs_run": self.epochs_run.tolist(),
            "best_epoch": self.best_epoch.tolist(),
            **{f"final_{c}": final[:, col[c]].tolist() for c in FINAL_COLUMNS},
            "best_val_acc": np.fmax.reduce(self.history[:, :, col["val_acc"]], axis=1).tolist(),
            "test_acc": [None] * k if self.test_acc is None else self.test_acc.tolist(),
            **{c: [m[c] for m in runs_metrics] for c in SUMMARY_METRICS},
            "seconds": self.seconds.tolist(),
        }


def histories(results: Sequence[RunResult]) -> dict[str, History]:
    """Each run's history by run id: what the report would otherwise read again from the store."""
    if isinstance(results, RunBatch):  # without a RunResult per run
        return {spec.run_id: as_history(h[:n]) for spec, n, h in
                zip(results.specs, results.epochs_run.tolist(), results.history)}
    return {r.spec.run_id: r.history for r in results}
