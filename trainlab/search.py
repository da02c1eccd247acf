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


# ---------------------------------------------------------------------------- training


def rungs(search: SearchConfig, epochs: int) -> list[int]:
    """The epochs at which successive halving compares the trials: min_epochs × eta^k, before the last."""
    out, rung = [], search.min_epochs
    while rung < epochs:
        out.append(rung)
        rung *= search.eta
    return out


def trial_numbers(specs: list[RunSpec]) -> Tensor:
    """Each spec's trial, as a number (the seeds of a trial share it)."""
    ids = {group: i for i, group in enumerate(dict.fromkeys(s.group for s in specs))}
    return torch.tensor([ids[s.group] for s in specs])


def trial_scores(trials: Tensor, loss: Tensor) -> tuple[Tensor, Tensor]:
    """(the distinct trials, each one's mean val loss over its seeds); not finite counts as worst."""
    loss = torch.where(torch.isfinite(loss), loss, torch.inf)
    unique, inverse = torch.unique(trials, return_inverse=True)
    total = torch.zeros(len(unique), dtype=loss.dtype).index_add_(0, inverse, loss)
    count = torch.zeros(len(unique), dtype=loss.dtype).index_add_(0, inverse, torch.ones_like(loss))
    return unique, total / count


class Halving:
    """Successive halving: at each rung, keep the best 1/eta of the trials still training (by mean
    val loss over their seeds) and prune the others."""

    def __init__(self, specs: list[RunSpec], search: SearchConfig):
        self.trial = trial_numbers(specs)
        self.rungs = set(rungs(search, specs[0].config.train.epochs))
        self.eta = search.eta

    def after_epoch(self, epoch: int, rows: Tensor, record: Tensor, params: Tensor, optimizer: Any,
                    active: Tensor) -> Tensor | None:
        if epoch not in self.rungs or not active.any():
            return None
        trials = self.trial[rows]
        unique, score = trial_scores(trials[active], record[active, VAL_LOSS])
        keep = unique[torch.argsort(score, stable=True)[: math.ceil(len(unique) / self.eta)]]
        return active & ~torch.isin(trials, keep)


def search_engine(specs: list[RunSpec], data_for, search: SearchConfig, max_memory: int | None = None,
                  progress=None, **_: Any) -> Iterator[RunBatch | list[RunResult]]:
    """The runner's engine for ``halving`` and ``pbt``: each population of one shape trains as one
    slice under the search's controller (the trials of different shapes are searched apart); a
    config the population engine does not implement trains every epoch on the reference engine."""
    from trainlab.population import plan, run_chunk, train_in_slices

    for chunk in plan(specs, data_for, max_memory):
        data = data_for(chunk.specs[0].config)
        if not chunk.population:
            yield run_chunk(chunk, data)
            if progress:
                progress(len(chunk.specs))
            continue
        controller = Halving(chunk.specs, search)
        batch = None
        for batch, _ in train_in_slices(chunk.specs, data, slice_models=len(chunk.specs), workers=1,
                                        progress=progress, controller=controller):
            pass
        yield batch
