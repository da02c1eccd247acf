"""Compare mode: settings side by side on the same data, each over several seeds, as mean ± std curves.

The request is an ordinary grid config (``vary`` is its grid), trained by the population engine,
which sends any setting it cannot train exactly to the reference engine; so an exported TOML and
``trainlab run`` give the same runs.
"""

from __future__ import annotations

import numpy as np

from trainlab import stats
from trainlab.config import expand
from trainlab.data import Dataset
from trainlab.history import RunResult
from trainlab.models import model_from_params
from trainlab.population import population_engine, unsupported
from trainlab.web.requests import Request
from trainlab.web.views import Views

CURVES = ("train_loss", "val_loss", "train_acc", "val_acc")


class Comparison:
    """An iterator of ``compare_result`` messages, one per setting, in the order its seeds finish."""

    def __init__(self, request: Request, data: Dataset):
        self.specs = expand(request.config)
        self.labels = list(dict.fromkeys(s.group for s in self.specs))
        self.seeds = request.config.seed_list
        self.data, self.views = data, Views(data)
        self._chunks = population_engine(self.specs, lambda cfg: data)
        self._done: dict[str, list[RunResult]] = {label: [] for label in self.labels}

    def __iter__(self) -> Comparison:
        return self

    def __next__(self) -> dict:
        while True:
            finished = []
            for result in next(self._chunks):
                runs = self._done[result.spec.group]
                runs.append(result)
                if len(runs) == len(self.seeds):
                    finished.append(result.spec.group)
            if finished:
                return {"type": "compare_result", "settings": [self.describe(label) for label in finished]}

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
