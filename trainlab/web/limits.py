"""What one browser request may ask of the server, and how many trainings run at once.

The playground is meant for one person on their own machine, but a page from any site can send it
requests, so every request is held to sizes that keep the machine responsive.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from trainlab.config import RunConfig
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
    max_upload_bytes: int = 1 << 20
    max_trainings: int = 4  # training sessions and comparisons running at the same time
    max_settings: int = 6  # compare mode
    max_seeds: int = 10  # compare mode, per setting

    def check(self, cfg: RunConfig, n_rows: int | None = None) -> None:
        """Refuse a config bigger than these limits (``n_rows``: an uploaded CSV's rows)."""
        rows = n_rows if cfg.data.name == "csv" else cfg.data.n_samples
        if rows is not None and rows > self.max_samples:
            raise RequestRefused(f"data.n_samples: at most {self.max_samples} points in the playground (got {rows})")
        if len(cfg.model.hidden) > self.max_layers:
            raise RequestRefused(f"model.hidden: at most {self.max_layers} hidden layers in the playground "
                                 f"(got {len(cfg.model.hidden)})")
        if any(h > self.max_units for h in cfg.model.hidden):
            raise RequestRefused(f"model.hidden: at most {self.max_units} units per layer in the playground "
                                 f"(got {max(cfg.model.hidden)})")
        if cfg.train.epochs > self.max_epochs:
            raise RequestRefused(f"train.epochs: at most {self.max_epochs} in the playground (got {cfg.train.epochs})")

    def check_compare(self, n_settings: int, n_seeds: int) -> None:
        if not 2 <= n_settings <= self.max_settings:
            raise RequestRefused(f"compare: between 2 and {self.max_settings} settings (got {n_settings})")
        if not 1 <= n_seeds <= self.max_seeds:
            raise RequestRefused(f"compare: between 1 and {self.max_seeds} seeds per setting (got {n_seeds})")


class Slots:
    """A count of running trainings that refuses, rather than queues, one too many."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self.used >= self.limit:
                raise RequestRefused(f"{self.limit} trainings are already running on this server: pause or close "
                                     "another playground tab and try again", status=429)
            self.used += 1

    def release(self) -> None:
        with self._lock:
            self.used -= 1
