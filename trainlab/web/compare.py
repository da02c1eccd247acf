"""Compare mode: settings side by side on the same data, each over several seeds, as mean ± std curves.

The request is an ordinary grid config (``vary`` is its grid), trained by the population engine,
with any setting it cannot train exactly sent to the reference engine, as ``trainlab run`` does;
so an exported TOML gives the same runs. It runs in a worker thread, reports its progress after
every epoch, and stops at the next epoch once ``cancelled`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np

from trainlab import stats
from trainlab.config import expand
from trainlab.data import Dataset
from trainlab.history import RunResult
from trainlab.models import model_from_params
from trainlab.population import plan, train_in_slices, unsupported
from trainlab.train import Training
from trainlab.web.requests import Request
from trainlab.web.views import Views

CURVES = ("train_loss", "val_loss", "train_acc", "val_acc")


class Cancelled(Exception):
    """The comparison was cancelled (its tab closed or asked to, or the server is stopping)."""


class Comparison:
    """Trains every setting over its seeds; ``run`` yields a ``compare_result`` message as settings finish."""

    def __init__(self, request: Request, data: Dataset, cancelled: threading.Event,
                 progress: Callable[[float], None] = lambda fraction: None):
        self.specs = expand(request.config)
        self.labels = list(dict.fromkeys(s.group for s in self.specs))
        self.seeds = request.config.seed_list
        self.data, self.views = data, Views(data)
        self.cancelled, self.report = cancelled, progress
        self.runs_done = 0.0  # runs trained so far, fractions of a run included
        self._done: dict[str, list[RunResult]] = {label: [] for label in self.labels}

    def advanced(self, runs: float) -> None:
        """After each epoch of any run: report, or stop here if cancelled."""
        if self.cancelled.is_set():
            raise Cancelled
        self.runs_done += runs
        self.report(self.runs_done / len(self.specs))

    def run(self) -> Iterator[dict]:
        for chunk in plan(self.specs, lambda cfg: self.data):
            if chunk.population:
                for batch, finished in train_in_slices(chunk.specs, self.data, progress=self.advanced):
                    yield from self._finished(batch.take(finished))
                continue
            for spec in chunk.specs:
                epochs = spec.config.train.epochs
                training = Training(spec.config, spec.seed, self.data, diagnostics=False)
                for _ in training.epochs():
                    self.advanced(1 / epochs)
                yield from self._finished([training.result(spec)])

    def _finished(self, results) -> Iterator[dict]:
        finished = []
        for result in results:
            runs = self._done[result.spec.group]
            runs.append(result)
            if len(runs) == len(self.seeds):
                finished.append(result.spec.group)
        if finished:
            yield {"type": "compare_result", "settings": [self.describe(label) for label in finished]}

    def describe(self, label: str) -> dict:
        runs = sorted(self._done[label], key=lambda r: r.spec.seed)
        cfg = runs[0].spec.config
        reason = unsupported(cfg)
        first = runs[0]
        summaries = [r.summary() for r in runs]
        model = model_from_params(cfg.model, first.params) if first.status != "diverged" else None
        return {
            "label": label,
            "engine": f"reference ({reason})" if reason else "population",
            "seeds": len(runs),
            "statuses": [r.status for r in runs],
            "curves": {c: band([r.history for r in runs], c) for c in CURVES},
            "final": {c: band([{c: [s[f"final_{c}"]]} for s in summaries], c) for c in CURVES},
            "output": self.views.output(model) if model is not None else None,
        }


def band(histories: list[dict[str, list[float]]], column: str) -> dict:
    """``stats.band`` (the report's mean ± std over seeds) as JSON-safe lists, one value per epoch."""
    _, mean, std = stats.band(histories, column)
    as_list = lambda a: [None if not np.isfinite(v) else round(float(v), 6) for v in a]  # noqa: E731
    return {"mean": as_list(mean), "std": as_list(std)}
