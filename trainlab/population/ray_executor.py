"""Population chunks as Ray tasks: how a sweep outgrows one machine.

The chunks are the same as the local executor's and each is trained by the same function, so the
numbers are identical; only where they run changes. Results come back to the driver, which stores
them in the output directory as they arrive. Needs the ``ray`` extra: ``pip install 'trainlab[ray]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from trainlab.errors import BadInput
from trainlab.history import RunBatch, RunResult


def check_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise BadInput("--executor ray needs Ray: pip install 'trainlab[ray]'") from None


def run_on_ray(chunks: list, data_for, address: str | None, train: Callable[..., Any],
               **options: Any) -> Iterator[list[RunResult] | RunBatch]:
    """Submit every chunk as a task (one CPU each) calling ``train(chunk, data, **options)``
    (``population.run_chunk``, a search's ``train_search_chunk``); yield results as they finish."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise BadInput(f"--ray-address {address}: cannot connect to a Ray cluster ({e})") from None
    try:
        task = ray.remote(num_cpus=1)(train)
        data_refs: dict[str, object] = {}
        pending = []
        for chunk in chunks:
            cfg = chunk.specs[0].config
            key = cfg.data.model_dump_json()
            if key not in data_refs:  # each data set is shipped to the cluster once
                data_refs[key] = ray.put(data_for(cfg))
            pending.append(task.remote(chunk, data_refs[key], **options))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()
