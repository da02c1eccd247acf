"""How a ``[search]``'s trials train (``config.expand`` samples them, stored like a grid's runs with the
sampled values as grid values; ``findings`` ranks them): ``random`` on the usual engine; ``halving``
and ``pbt`` each population of one shape in a single slice, under a controller the loop asks after
every epoch (halving prunes the worst trials at each rung, PBT lets the worst copy the best and
perturbs their optimizer settings); ``sampler = "tpe"`` in waves whose trials Optuna chooses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trainlab.config import RunSpec, SearchConfig, rungs, with_values
from trainlab.data import Dataset
from trainlab.errors import BadInput
from trainlab.history import HISTORY_COLUMNS, RunBatch, RunResult
from trainlab.population import Chunk, plan, population_engine, run_chunk, train_in_slices

VAL_LOSS = HISTORY_COLUMNS.index("val_loss")


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


class PopulationBasedTraining:
    """Every ``interval`` epochs, each trial in the worst ``quantile`` (by mean val loss over its
    seeds) takes the weights and optimizer state of a trial drawn from the best ``quantile``, seed
    for seed (exploit), and that trial's values each multiplied by a factor drawn from ``perturb``,
    kept within the search range (explore). ``values[t]`` are trial t's values now."""

    def __init__(self, specs: list[RunSpec], search: SearchConfig):
        self.search = search
        self.trial = trial_numbers(specs)
        self.seed = torch.tensor([s.seed for s in specs])
        self.seeds = list(dict.fromkeys(s.seed for s in specs))
        first: dict[int, RunSpec] = {}  # trial → its first spec
        for spec, t in zip(specs, self.trial.tolist()):
            first.setdefault(t, spec)
        self.base = [first[t].config for t in range(len(first))]
        self.values = [dict(first[t].grid_values) for t in range(len(first))]
        self.rng = np.random.default_rng([search.seed, len(specs)])  # apart from the sampling's stream

    def after_epoch(self, epoch: int, rows: Tensor, record: Tensor, params: Tensor, optimizer: Any,
                    active: Tensor) -> None:
        if epoch % self.search.interval:
            return None
        unique, score = trial_scores(self.trial[rows][active], record[active, VAL_LOSS])
        n = min(max(1, int(len(unique) * self.search.quantile)), len(unique) // 2)
        if n == 0:
            return None
        order = unique[torch.argsort(score, stable=True)].tolist()
        at = {(t, s): i for i, (t, s, a) in enumerate(zip(self.trial[rows].tolist(), self.seed[rows].tolist(),
                                                          active.tolist())) if a}
        for loser in order[-n:]:
            winner = order[int(self.rng.integers(n))]
            pairs = [(at[loser, s], at[winner, s]) for s in self.seeds if (loser, s) in at and (winner, s) in at]
            if not pairs:
                continue
            dst, src = (torch.tensor(x) for x in zip(*pairs))
            self.values[loser] = self.explore(self.values[winner], self.values[loser])
            params[dst] = params[src]
            optimizer.copy_rows(dst, src)
            optimizer.reconfigure(dst, with_values(self.base[loser], self.values[loser], "pbt").optim, params)
        return None

    def explore(self, values: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
        """A winner's sampled ``values``, each perturbed, beside the loser's ``own`` grid values."""
        out = dict(own)
        for key, value in values.items():
            if key not in self.search.space:
                continue
            (kind, (low, high)), = self.search.space[key].items()
            new = min(max(value * float(self.rng.choice(self.search.perturb)), low), high)
            out[key] = int(round(new)) if kind == "int" else new
        return out

    def final_specs(self, specs: list[RunSpec]) -> list[RunSpec]:
        """The specs with the values each trial ended with (those its last epochs trained with)."""
        return [spec.model_copy(update={"grid_values": self.values[t],
                                        "config": with_values(self.base[t], self.values[t], "pbt")})
                for spec, t in zip(specs, self.trial.tolist())]


def train_search_chunk(chunk: Chunk, data: Dataset, search: SearchConfig, progress=None) -> RunBatch | list[RunResult]:
    """One chunk of a search (a Ray task, or a step of the local loop): a population trains as one
    slice under its own controller, which judges the trials of this population only; a config the
    population engine does not implement trains every epoch on the reference engine."""
    if not chunk.population:
        return run_chunk(chunk, data)
    controller = (Halving if search.method == "halving" else PopulationBasedTraining)(chunk.specs, search)
    batch = None
    for batch, _ in train_in_slices(chunk.specs, data, slice_models=len(chunk.specs), workers=1,
                                    progress=progress, controller=controller):
        pass
    if isinstance(controller, PopulationBasedTraining):
        batch.specs = controller.final_specs(batch.specs)
    return batch


def search_engine(specs: list[RunSpec], data_for, search: SearchConfig, max_memory: int | None = None,
                  executor: str = "local", ray_address: str | None = None, progress=None
                  ) -> Iterator[RunBatch | list[RunResult]]:
    """The runner's engine for ``halving`` and ``pbt``: each population of one shape is one chunk,
    trained by ``train_search_chunk`` here or as a Ray task (the trials of different shapes are
    searched apart), yielded as it finishes. ``sampler = "tpe"``: ``tpe_engine``."""
    if search.sampler == "tpe":
        yield from tpe_engine(specs, data_for, search, max_memory=max_memory, executor=executor,
                              ray_address=ray_address, progress=progress)
        return
    chunks = plan(specs, data_for, max_memory)
    if executor == "ray":
        from trainlab.population.ray_executor import run_on_ray

        for results in run_on_ray(chunks, data_for, ray_address, train_search_chunk, search=search):
            yield results
            if progress:
                progress(len(results))
        return
    for chunk in chunks:
        yield train_search_chunk(chunk, data_for(chunk.specs[0].config), search, progress)
        if progress and not chunk.population:
            progress(len(chunk.specs))


# ---------------------------------------------------------------------------- Optuna's TPE


def tpe_engine(specs: list[RunSpec], data_for, search: SearchConfig, progress=None,
               **options: Any) -> Iterator[RunBatch | list[RunResult]]:
    """Trials chosen by Optuna's TPE sampler (seeded with the search's seed) through its ask-and-tell
    API, ``search.wave`` at a time: each wave trains on the population engine (``options``: its
    executor, memory), and each trial's mean final val loss over its seeds is told to the sampler
    before the next wave is asked. A diverged trial is told as failed."""
    try:
        import optuna
    except ImportError:
        raise BadInput("search.sampler = 'tpe' needs Optuna: pip install 'trainlab[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=search.seed))
    distributions = {key: optuna_distribution(dist) for key, dist in search.space.items()}
    by_trial: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_trial.setdefault(spec.group, []).append(spec)
    groups = list(by_trial)
    for start in range(0, len(groups), search.wave):
        asked = {group: study.ask(distributions) for group in groups[start : start + search.wave]}
        wave = []
        for group, trial in asked.items():
            values = {**by_trial[group][0].grid_values,
                      **{key: from_optuna(search.space[key], trial.params[key]) for key in search.space}}
            config = with_values(by_trial[group][0].config, values, f"search {group}")
            wave += [spec.model_copy(update={"grid_values": values, "config": config}) for spec in by_trial[group]]
        losses: dict[str, list[float]] = {group: [] for group in asked}
        for batch in population_engine(wave, data_for, progress=progress, **options):
            yield batch
            for group, loss in final_val_losses(batch):
                losses[group].append(loss)
        for group, trial in asked.items():
            value = float(np.mean(losses[group]))
            if math.isfinite(value):
                study.tell(trial, value)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)


def optuna_distribution(dist: dict[str, list[Any]]):
    """A search-space distribution as Optuna's; a choice as the index of its value (Optuna takes
    only plain values as choices, not lists such as layer widths)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    (kind, values), = dist.items()
    if kind == "choice":
        return CategoricalDistribution(list(range(len(values))))
    if kind == "int":
        return IntDistribution(values[0], values[1])
    return FloatDistribution(values[0], values[1], log=kind == "log_uniform")


def from_optuna(dist: dict[str, list[Any]], value: Any) -> Any:
    (kind, values), = dist.items()
    return values[value] if kind == "choice" else value


def final_val_losses(batch: RunBatch | list[RunResult]) -> list[tuple[str, float]]:
    """Each run's trial and final val loss (NaN for a diverged run: it has none to tell)."""
    if isinstance(batch, RunBatch):
        summary = batch.summaries()
        runs = zip(batch.specs, summary["final_val_loss"], summary["status"])
    else:
        runs = ((r.spec, r.summary()["final_val_loss"], r.status) for r in batch)
    return [(spec.group, loss if status != "diverged" else math.nan) for spec, loss, status in runs]
