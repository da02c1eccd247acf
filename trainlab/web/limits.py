"""What one browser request may ask of the server, and how many trainings run at once.

The playground is meant for one person on their own machine, but a page from any site can send it
requests, so every request is held to sizes that keep the machine responsive. ``Limits.check`` is
the one place they are checked: every entry point (a session's setup, a comparison and each of its
settings, /api/check, /api/export) parses through ``requests.parse_request``, which calls it before
any data is made or any model trained.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from trainlab.config import FIXED_DATASETS, RunConfig
from trainlab.data import DEFAULT_CLASSES, FIXED, Dataset
from trainlab.errors import BadInput


class RequestRefused(BadInput):
    """Bad input from the browser, with the HTTP status that says why (422 invalid, 413 too large, 429 busy)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_samples: int = 5000
    max_layers: int = 6
    max_units: int = 64
    max_epochs: int = 10_000
    max_classes: int = 6  # the page's class colours
    max_features: int = 8
    max_upload_bytes: int = 1 << 20
    max_trainings: int = 4  # played, stepped or compared at the same time, over all tabs
    max_settings: int = 6  # compare mode
    max_vary_keys: int = 3  # compare mode
    max_seeds: int = 10  # compare mode, per setting
    # A comparison's multiply-adds over all its settings and seeds (population.loop.model_work):
    # about a minute of the population engine on two cores.
    max_compare_work: float = 2e11
    max_compare_seconds: float = 300.0  # then it stops and says so

    def check(self, cfg: RunConfig, n_rows: int | None = None) -> None:
        """Refuse a config bigger than these limits (``n_rows``: an uploaded CSV's rows)."""
        if cfg.data.name in FIXED_DATASETS:
            raise RequestRefused(f"data.name: the playground draws 2-D data; {cfg.data.name} has "
                                 f"{FIXED[cfg.data.name].inputs} inputs (train it with trainlab run)")
        rows = n_rows if cfg.data.name == "csv" else cfg.data.n_samples
        if rows is not None and rows > self.max_samples:
            raise RequestRefused(f"data.n_samples: at most {self.max_samples} points in the playground (got {rows})")
        if cfg.data.n_classes is not None and cfg.data.n_classes > self.max_classes:
            raise RequestRefused(f"data.n_classes: at most {self.max_classes} classes in the playground "
                                 f"(got {cfg.data.n_classes})")
        features = cfg.data.features or []
        if len(features) > self.max_features:
            raise RequestRefused(f"data.features: at most {self.max_features} input features in the playground "
                                 f"(got {len(features)})")
        if len(set(features)) != len(features):
            raise RequestRefused("data.features: each feature once (got repeats)")
        if len(cfg.model.hidden) > self.max_layers:
            raise RequestRefused(f"model.hidden: at most {self.max_layers} hidden layers in the playground "
                                 f"(got {len(cfg.model.hidden)})")
        if any(h > self.max_units for h in cfg.model.hidden):
            raise RequestRefused(f"model.hidden: at most {self.max_units} units per layer in the playground "
                                 f"(got {max(cfg.model.hidden)})")
        if cfg.train.epochs > self.max_epochs:
            raise RequestRefused(f"train.epochs: at most {self.max_epochs} in the playground (got {cfg.train.epochs})")

    def check_data(self, data: Dataset) -> None:
        """What only the data can tell (an uploaded CSV's labels)."""
        if data.n_classes > self.max_classes:
            raise RequestRefused(f"data: at most {self.max_classes} classes in the playground (the labels y go up "
                                 f"to {data.n_classes - 1})")

    def check_compare(self, n_settings: int, n_seeds: int) -> None:
        if not 2 <= n_settings <= self.max_settings:
            raise RequestRefused(f"compare: between 2 and {self.max_settings} settings (got {n_settings})")
        if not 1 <= n_seeds <= self.max_seeds:
            raise RequestRefused(f"compare: between 1 and {self.max_seeds} seeds per setting (got {n_seeds})")

    def check_compare_work(self, configs: list[RunConfig], n_seeds: int, n_rows: int | None = None) -> None:
        """Refuse a comparison whose settings × seeds would keep the machine busy for minutes."""
        from trainlab.population.loop import model_work

        work = 0.0
        for cfg in configs:
            n = n_rows if cfg.data.name == "csv" else cfg.data.n_samples
            n_train = round(n * cfg.data.split[0])
            n_in = len(cfg.data.features or ["x1", "x2"])
            n_out = 1 if cfg.data.task == "regression" else cfg.data.n_classes or DEFAULT_CLASSES.get(cfg.data.name, 2)
            work += n_seeds * model_work([n_in, *cfg.model.hidden, n_out], cfg.train.epochs, n_train, n)
        if work > self.max_compare_work:
            raise RequestRefused(f"compare: too much training for the playground ({work / self.max_compare_work:.1f}× "
                                 "its budget): fewer seeds, epochs, points or units", status=413)


class Slots:
    """A count of running trainings that refuses, rather than queues, one too many."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def acquire(self) -> Slot:
        with self._lock:
            if self.used >= self.limit:
                raise RequestRefused(f"{self.limit} trainings are already running on this server: pause or close "
                                     "another playground tab and try again", status=429)
            self.used += 1
        return Slot(self)

    def _free(self) -> None:
        with self._lock:
            self.used -= 1


class Slot:
    """One acquired slot; ``release`` frees it once, however many paths call it."""

    def __init__(self, slots: Slots):
        self._slots, self._held = slots, True
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._slots._free()
