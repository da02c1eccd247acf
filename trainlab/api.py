"""``tl.train`` and ``tl.run``: the library's two ways to train, taking the data as a config's
data section describes it, or given in Python as arrays ``(X, y)`` or a ``Dataset``."""

from __future__ import annotations

from typing import Any

from trainlab.config import RunConfig
from trainlab.data import Dataset, dataset_from_arrays
from trainlab.errors import BadInput
from trainlab.history import RunResult

# What the stored config of a run on arrays says its data was: the arrays are not stored, so a
# later `trainlab report` of the directory says it cannot find them rather than draw other data.
ARRAYS_PATH = "<arrays given to tl.run>"


def train(cfg: RunConfig, seed: int = 0, data: Dataset | tuple[Any, Any] | None = None, **options: Any) -> RunResult:
    """Train one model of ``cfg`` (one setting: no grid) from ``seed`` with the reference engine.

    ``data``: a ``Dataset``, or arrays ``(X, y)`` (rows × features, one target per row), split and
    scaled as ``cfg.data`` says; by default the data set ``cfg.data`` names. ``options``: those of
    ``trainlab.train.train`` (``gradients``, ``diagnostics``)."""
    from trainlab.train import train as train_one

    if cfg.grid:
        first = {k: v[0] for k, v in cfg.grid.items()}
        raise BadInput(f"{cfg.experiment_name}: tl.train trains one setting, and this config has a grid over "
                       f"{', '.join(cfg.grid)}: use tl.run(cfg) for every setting, or one of them: "
                       f"tl.train(cfg.at({first!r}))")
    if cfg.search:
        raise BadInput(f"{cfg.experiment_name}: tl.train trains one setting, and this config has a [search] over "
                       f"{', '.join(cfg.search.space)}: use tl.run(cfg) for its trials")
    if data is not None and not isinstance(data, Dataset):
        data = dataset_from_arrays(*_pair(data), cfg.data)
    return train_one(cfg, seed, data=data, **options)


def run(cfg: RunConfig | list[RunConfig], data: Dataset | tuple[Any, Any] | None = None, **options: Any):
    """Every run of one or more experiments (each grid point × each seed) into ``out``, stored and
    plotted: ``trainlab.runner.run``. ``data``: a ``Dataset`` or arrays ``(X, y)`` for every run,
    split and scaled as each run's data section says (which must not sweep the data source)."""
    from trainlab.runner import run as run_all

    if data is None:
        return run_all(cfg, **options)
    cfgs = cfg if isinstance(cfg, list) else [cfg]
    marked = [c.model_copy(update={"data": c.data.model_copy(update={"name": "csv", "path": ARRAYS_PATH})})
              for c in cfgs]
    return run_all(marked if isinstance(cfg, list) else marked[0], data_for=GivenData(data), **options)


class GivenData:
    """The data sets of runs on given data: the ``Dataset`` itself, or the arrays split and scaled
    for each distinct data section."""

    def __init__(self, data: Dataset | tuple[Any, Any]):
        self.data = data if isinstance(data, Dataset) else _pair(data)
        self._made: dict[str, Dataset] = {}

    def __call__(self, cfg: RunConfig) -> Dataset:
        if isinstance(self.data, Dataset):
            return self.data
        key = cfg.data.model_dump_json()
        if key not in self._made:
            self._made[key] = dataset_from_arrays(*self.data, cfg.data)
        return self._made[key]


def _pair(data: Any) -> tuple[Any, Any]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise BadInput(f"data: expected a Dataset or a pair (X, y) of arrays, got {type(data).__name__}")
