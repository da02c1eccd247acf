"""Which runs can train together, and how many at once.

Runs share a population when everything that shapes its tensors or its loop is equal (``group_key``);
seeds, init, learning rates, betas, momentum, weight decay and schedules may differ per model. A group
is cut into chunks that fit a memory budget. A config using anything this engine does not implement
goes to the reference engine, which defines what a config means, rather than being trained differently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from trainlab.budget import total_memory
from trainlab.config import RunConfig, RunSpec
from trainlab.data import Dataset
from trainlab.errors import BadInput
from trainlab.history import HISTORY_COLUMNS
from trainlab.models import layer_sizes
from trainlab.train import DTYPES

# The config fields this engine implements; any other field must keep its default value.
SUPPORTED_FIELDS = frozenset({
    "name", "description", "experiment", "seeds", "grid",
    "data.name", "data.n_samples", "data.noise", "data.seed", "data.n_classes", "data.split", "data.stratify",
    "data.scale", "data.path", "data.features", "data.target", "data.function",
    "model.hidden", "model.activation", "model.dropout", "model.init", "model.init_std",
    "optim.name", "optim.lr", "optim.momentum", "optim.betas", "optim.eps", "optim.alpha", "optim.weight_decay",
    "optim.schedule",  # every schedule: the engine asks the pure optim.lr_at
    "train.epochs", "train.batch_size", "train.dtype", "train.early_stopping", "train.early_stopping.patience",
    "train.early_stopping.min_delta", "train.early_stopping.monitor", "train.early_stopping.restore_best",
})
MAX_CHUNK = 4096  # beyond this a bigger population is no faster, only bigger
_DEFAULTS: dict[type, dict[str, Any]] = {}  # flattened default config of each config class


@dataclass
class Chunk:
    specs: list[RunSpec]
    population: bool  # False: train these with the reference engine


def unsupported(cfg: RunConfig) -> str | None:
    """Why the population engine cannot train ``cfg`` exactly as the reference engine does, if it can't."""
    if type(cfg) not in _DEFAULTS:
        _DEFAULTS[type(cfg)] = _flatten(type(cfg)().model_dump())
    defaults = _DEFAULTS[type(cfg)]
    for path, value in _flatten(cfg.model_dump()).items():
        known = any(path == f or path.startswith(f + ".") for f in SUPPORTED_FIELDS)
        if not known and value != defaults.get(path):
            return f"{path} is not implemented by the population engine"
    if cfg.train.dtype not in DTYPES:
        return f"train.dtype {cfg.train.dtype!r}"
    return None


def group_key(cfg: RunConfig) -> tuple:
    """What must be equal for runs to share a population."""
    return (cfg.data.model_dump_json(),
            tuple(cfg.model.hidden), tuple(cfg.model.activations), tuple(cfg.model.dropouts),
            cfg.train.batch_size, cfg.train.dtype, cfg.train.epochs,
            cfg.train.early_stopping.model_dump_json() if cfg.train.early_stopping else None,
            cfg.optim.name, cfg.optim.momentum_value > 0)  # RMSprop rounds differently with a momentum buffer


def shape_of(cfg: RunConfig, data: Dataset) -> tuple[list[int], int]:
    """The layer sizes of ``cfg``'s model on ``data``, and its number of parameters."""
    sizes = layer_sizes(cfg.model, data.in_dim, data.n_classes)
    return sizes, sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def bytes_per_model(cfg: RunConfig, data: Dataset) -> int:
    """A generous estimate of what one more model costs a population, in bytes: what it keeps until
    the chunk is stored (its history and final weights, see ``history.RunBatch``), plus its share
    of a slice's state while it trains and of a RunResult should someone ask for one."""
    itemsize = 8 if cfg.train.dtype == "float64" else 4
    _, n_params = shape_of(cfg, data)
    history = cfg.train.epochs * len(HISTORY_COLUMNS) * 8
    scores = 2 * (data.n_classes + 4) * data.n_classes * 40  # its metrics (Python lists) on two splits
    return history + n_params * itemsize + scores + 256


def slice_workspace(cfg: RunConfig, data: Dataset) -> int:
    """Memory for the slices in training, whatever the population's size: for each worker thread,
    a slice's parameters, gradient, optimizer state, best weights, generators and activations."""
    import torch

    from trainlab.population.loop import SLICE_ELEMENTS, slice_size

    itemsize = 8 if cfg.train.dtype == "float64" else 4
    sizes, n_params = shape_of(cfg, data)
    n = len(data.X_train)
    batch = min(cfg.train.batch_size or n, n)
    models = min(slice_size(sizes, batch, MAX_CHUNK, in_c=True), MAX_CHUNK)  # the largest slice (first_slices)
    per_model = 10 * n_params * itemsize + 5000 + 8 * n
    workers = torch.get_num_threads()  # the engine's threads, one slice each
    return workers * (models * per_model + 16 * SLICE_ELEMENTS * itemsize)  # activations: 8 of the widest


def plan(specs: list[RunSpec], data_for, max_memory: int | None = None) -> list[Chunk]:
    """Group ``specs`` into populations of at most the size that fits ``max_memory`` bytes."""
    budget = max_memory or total_memory() // 4
    groups: dict[tuple, list[RunSpec]] = {}
    chunks = []
    keys: dict[int, tuple | None] = {}  # the seeds of a grid point share its config object
    for spec in specs:
        cfg = spec.config
        if id(cfg) not in keys:
            keys[id(cfg)] = None if unsupported(cfg) else group_key(cfg)
        key = keys[id(cfg)]
        if key is None:
            chunks.append(Chunk([spec], population=False))
        else:
            groups.setdefault(key, []).append(spec)
    for group in groups.values():
        cfg, data = group[0].config, data_for(group[0].config)
        room = budget - slice_workspace(cfg, data)
        size = max(1, min(MAX_CHUNK, room // bytes_per_model(cfg, data)))
        n = math.ceil(len(group) / size)
        per = math.ceil(len(group) / n)  # equal chunks rather than a full ones and a runt
        chunks += [Chunk(group[i : i + per], population=True) for i in range(0, len(group), per)]
    return chunks


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(text: str) -> int:
    """``"4GiB"``, ``"512M"``, ``"2g"``, ``"1000000"`` → bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise BadInput(f"--max-memory {text!r}: expected a size such as 4GiB, 512MiB or 2G")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and k != "grid":
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out
