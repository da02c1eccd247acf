"""The population engine: K models of one shape trained in lockstep as batched tensors.

Given the same seed it draws the same initial weights and the same minibatch orders as the
reference engine (``train.py``), applies ``torch.optim``'s update rules row by row, and so agrees
with it to rounding. ``plan`` groups a sweep into populations (``loop.train_population`` trains
one); an executor runs them here or on a Ray cluster and yields each chunk's results to the runner.
"""

from __future__ import annotations

from collections.abc import Iterator

from trainlab.config import RunSpec
from trainlab.data import Dataset
from trainlab.history import RunResult
from trainlab.population.loop import train_population
from trainlab.population.plan import Chunk, parse_memory, plan, unsupported

__all__ = ["Chunk", "parse_memory", "plan", "population_engine", "run_chunk", "train_population", "unsupported"]


def run_chunk(chunk: Chunk, data: Dataset) -> list[RunResult]:
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
) -> Iterator[list[RunResult]]:
    """The runner's engine interface: yields the results of one chunk at a time."""
    chunks = plan(specs, data_for, max_memory)
    if executor == "ray":
        from trainlab.population.ray_executor import run_on_ray

        yield from run_on_ray(chunks, data_for, ray_address)
        return
    for chunk in chunks:
        yield run_chunk(chunk, data_for(chunk.specs[0].config))
