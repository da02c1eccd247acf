"""The population engine: K models of one shape trained in lockstep as batched tensors.

Given the same seed it draws the same initial weights and the same minibatch orders as the
reference engine (``train.py``), applies ``torch.optim``'s update rules row by row, and so agrees
with it to rounding. ``plan`` groups a sweep into populations (``loop.train_population`` trains
one); an executor runs them here or on a Ray cluster and yields each chunk's results to the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from trainlab.config import RunSpec
from trainlab.data import Dataset
from trainlab.history import RunResult
from trainlab.population.loop import train_in_slices, train_population
from trainlab.population.plan import Chunk, parse_memory, plan, unsupported

__all__ = ["Chunk", "parse_memory", "plan", "population_engine", "run_chunk", "train_in_slices", "train_population",
           "unsupported"]


def run_chunk(chunk: Chunk, data: Dataset) -> list[RunResult]:
    """A chunk's runs all at once (a Ray task)."""
    if chunk.population:
        return train_population(chunk.specs, data)
    from trainlab.train import train

    return [train(spec.config, spec.seed, data=data, spec=spec, diagnostics=False) for spec in chunk.specs]


def population_engine(
    specs: list[RunSpec],
    data_for,
    max_memory: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> Iterator[list[RunResult]]:
    """The runner's engine interface: yields finished runs a slice (or a Ray chunk) at a time;
    ``progress(runs)`` as training advances."""
    chunks = plan(specs, data_for, max_memory)
    if executor == "ray":
        from trainlab.population.ray_executor import run_on_ray

        for results in run_on_ray(chunks, data_for, ray_address, run_chunk):
            yield results
            if progress:
                progress(len(results))
        return
    for chunk in chunks:
        data = data_for(chunk.specs[0].config)
        if chunk.population:
            for batch, finished in train_in_slices(chunk.specs, data, progress=progress):
                yield batch.take(finished)
        else:
            yield run_chunk(chunk, data)
            if progress:
                progress(len(chunk.specs))
