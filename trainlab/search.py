"""Search beyond the grid: trials sampled from a ``[search]`` space, trained as populations.

``trial_specs`` turns a config's search into runs (trial × seed), stored like a grid's runs with
the sampled values as their grid values. ``random`` trains them with the usual engine; ``halving``
and ``pbt`` train each population of one shape in a single slice, with a controller that the loop
asks after every epoch: successive halving prunes the worst trials at each rung, population-based
training lets the worst copy the best and perturbs their optimizer settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trainlab.config import RunConfig, RunSpec, SearchConfig, format_value, short_key, with_values
from trainlab.history import HISTORY_COLUMNS, RunBatch, RunResult

VAL_LOSS = HISTORY_COLUMNS.index("val_loss")


# ---------------------------------------------------------------------------- sampling


def sample(search: SearchConfig) -> list[dict[str, Any]]:
    """``search.trials`` settings drawn from ``search.space`` with ``search.seed``: the same seed, the same trials."""
    rng = np.random.default_rng(search.seed)
    return [{key: draw(dist, rng) for key, dist in search.space.items()} for _ in range(search.trials)]


def draw(dist: dict[str, list[Any]], rng: np.random.Generator) -> Any:
    (kind, values), = dist.items()
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(values[0]), math.log(values[1]))))
    if kind == "uniform":
        return float(rng.uniform(values[0], values[1]))
    if kind == "int":
        return int(rng.integers(values[0], values[1] + 1))
    return values[int(rng.integers(len(values)))]  # choice


def trial_label(i: int, trials: int) -> str:
    return f"trial={i:0{len(str(trials - 1))}d}"


def trial_specs(cfg: RunConfig) -> list[RunSpec]:
    """Each sampled trial times each seed; a trial is a setting (``group``), its values the grid values."""
    search = cfg.search
    specs = []
    for i, values in enumerate(sample(search)):
        trial_cfg = with_values(cfg, values, f"search trial {i}")
        group = trial_label(i, search.trials)
        for seed in cfg.seed_list:
            specs.append(RunSpec(run_id=f"{cfg.experiment_name}/{group}/seed={seed}", experiment=cfg.experiment_name,
                                 group=group, seed=seed, grid_values=values, config=trial_cfg))
    return specs


def values_label(values: dict[str, Any]) -> str:
    """``lr=0.0123, hidden=[32]``: a trial's sampled values for a reader."""
    return ", ".join(f"{short_key(k, values)}={format_value(v)}" for k, v in values.items())
