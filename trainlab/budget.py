"""Before a sweep starts: roughly what it would take (runs, model-epochs, time, memory), and a
refusal above a safe bound unless the user says to go on (``--yes``).

The estimate is an order of magnitude, from the configs alone (no grid expanded, no data made):
time from the throughput of ``trainlab bench``, slower in proportion to the parameters and points
of larger nets; memory for the largest single model (weights, gradients, two optimizer states, the
activations of every point through every layer, the data) plus the histories of all runs, which
the engines hold a chunk at a time and the store keeps.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.config import RunConfig
from trainlab.data import DEFAULT_CLASSES, FIXED
from trainlab.errors import BadInput

MAX_RUNS = 100_000
MAX_SECONDS = 600
MAX_WIDTH = 10_000  # units in one layer: beyond the small networks trainlab is built and tested for

POPULATION_SECONDS = 1e-5  # per model-epoch of a 2→32→2 net on 600 points (~1e5 model-epochs/s)
REFERENCE_EPOCH_SECONDS = 0.01  # per epoch of a small net, one model at a time
REFERENCE_SECONDS_PER_PARAM_POINT = 3e-9  # per parameter × point and epoch, for a large net
SMALL_PARAMS, SMALL_POINTS = 162, 600  # 2→32→2, moons
HISTORY_BYTES_PER_EPOCH = 8 * 8  # the history's columns, float64


@dataclass(frozen=True)
class Estimate:
    runs: int
    model_epochs: int
    seconds: float
    memory: int  # bytes
    widest: int  # units in the widest layer

    def describe(self) -> str:
        return (f"{self.runs:,} runs, {self.model_epochs:,} model-epochs, about {duration(self.seconds)} "
                f"and {size(self.memory)} of memory")


def check_size(cfgs: list[RunConfig], engines: list[str], yes: bool = False) -> None:
    """BadInput, one line saying what the experiments would take and how to go on, when they are
    above the safe bounds (unless ``yes``)."""
    if yes:
        return
    runs = sum(count_runs(c) for c in cfgs)
    if runs > MAX_RUNS:
        raise BadInput(f"the grid has {runs:,} runs (more than {MAX_RUNS:,}); pass --yes to run them anyway, "
                       "or use fewer grid values or seeds")
    estimate = estimate_all(cfgs, engines)
    half_ram = total_memory() // 2
    reasons = []
    if estimate.seconds > MAX_SECONDS:
        reasons.append(f"more than {duration(MAX_SECONDS)}")
    if estimate.memory > half_ram:
        reasons.append(f"more than half this machine's memory ({size(half_ram)})")
    if estimate.widest > MAX_WIDTH:
        reasons.append(f"a layer of {estimate.widest:,} units (trainlab is built for networks of at most "
                       f"{MAX_WIDTH:,})")
    if reasons:
        raise BadInput(f"this would take {estimate.describe()}: {'; '.join(reasons)}. Pass --yes to go on, or make "
                       "it smaller (fewer grid values, seeds or epochs, narrower layers)")


def count_runs(cfg: RunConfig) -> int:
    trials = cfg.search.trials if cfg.search else 1
    return math.prod(len(values) for values in cfg.grid.values()) * trials * len(cfg.seed_list)


def estimate_all(cfgs: list[RunConfig], engines: list[str]) -> Estimate:
    runs = model_epochs = widest = model_memory = histories = 0
    seconds = 0.0
    for cfg, engine in zip(cfgs, engines):
        # runs per grid point: its seeds, times a search's trials (each sized as its grid point and
        # trained to the end: an upper bound for halving)
        seeds = len(cfg.seed_list) * (cfg.search.trials if cfg.search else 1)
        keys = list(cfg.grid)
        for combo in itertools.product(*(cfg.grid[k] for k in keys)):
            point = _Point(cfg, dict(zip(keys, combo)))
            runs += seeds
            model_epochs += seeds * point.epochs
            widest = max(widest, max(point.hidden, default=0))
            if engine == "population":  # a smaller net or data set than the benchmark's is not faster
                seconds += seeds * point.epochs * POPULATION_SECONDS * (max(1.0, point.params / SMALL_PARAMS)
                                                                        * max(1.0, point.points / SMALL_POINTS))
            else:
                seconds += seeds * point.epochs * max(REFERENCE_EPOCH_SECONDS,
                                                      REFERENCE_SECONDS_PER_PARAM_POINT * point.params * point.points)
            model_memory = max(model_memory, point.memory)
            histories += seeds * point.epochs * HISTORY_BYTES_PER_EPOCH
    return Estimate(runs, model_epochs, seconds, model_memory + histories, widest)


class _Point:
    """The sizes of one grid point, read from the config and the point's values."""

    def __init__(self, cfg: RunConfig, values: dict[str, Any]):
        get = values.get
        d = cfg.data
        self.epochs = int(get("train.epochs", cfg.train.epochs))
        self.hidden = [int(h) for h in get("model.hidden", cfg.model.hidden)]
        features = get("data.features", d.features)
        path = get("data.path", d.path)
        name = get("data.name", d.name)
        fixed = FIXED.get(name)  # scikit-learn's bundled data: its own rows, inputs and classes
        inputs = len(features) if features else (csv_columns(path) - 1 if name == "csv" else
                                                 fixed.inputs if fixed else 2)
        outputs = fixed.classes if fixed else int(get("data.n_classes", d.n_classes) or DEFAULT_CLASSES.get(name, 2))
        self.points = (csv_rows(path) if name == "csv" else fixed.rows if fixed else
                       int(get("data.n_samples", d.n_samples)))
        sizes = [max(inputs, 1), *self.hidden, outputs]
        self.params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
        self.memory = 4 * 8 * self.params + 3 * 8 * self.points * sum(sizes) + 2 * 8 * self.points * inputs


def csv_rows(path: str | None) -> int:
    """About how many rows a CSV file has, from its size and its first lines."""
    head, total = _head(path)
    return max(1, round(total * max(head.count(b"\n"), 1) / max(len(head), 1))) if head else 1


def csv_columns(path: str | None) -> int:
    head = _head(path)[0]
    return head.split(b"\n", 1)[0].count(b",") + 1 if head else 3


def _head(path: str | None) -> tuple[bytes, int]:
    """The first 64 KiB of a CSV file and its size; nothing when it cannot be read (data.py says why)."""
    if not Path(str(path)).is_file():  # never open a pipe or a device
        return b"", 0
    try:
        with Path(str(path)).open("rb") as f:
            return f.read(1 << 16), os.fstat(f.fileno()).st_size
    except OSError:
        return b"", 0


def total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 16 << 30


def duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    for below, unit, length in ((90, "s", 1), (5400, "minutes", 60), (2 * 86400, "hours", 3600)):
        if seconds < below:
            return f"{seconds / length:.0f} {unit}"
    return f"{seconds / 86400:,.0f} days"


def size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:,.0f} TB"
