"""Run configuration: the TOML format of DESIGN.md as strict pydantic models.

A config file describes one experiment (data, model, optimizer, schedule, seeds, and optionally a
``[grid]`` to sweep or a ``[search]`` space to sample); ``expand`` turns it into its concrete runs.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from trainlab.activations import ACTIVATIONS
from trainlab.errors import BadInput

# The choices of the config's named settings (the web page lists them too, from /api/options).
# data.py generates each data set; optim.py and population/optim.py build each optimizer;
# activations.py holds the activations (tests/test_activations.py checks they all agree).
DATASETS = ("moons", "circles", "xor", "spiral", "blobs", "gaussian", "plane", "function", "digits", "iris", "wine",
            "breast_cancer", "csv")
# The data sets scikit-learn ships (no download): their rows are fixed, so n_samples, noise and
# n_classes do not apply to them.
FIXED_DATASETS = ("digits", "iris", "wine", "breast_cancer")
# The curves x2 = f(x1) of data.name = "function" (data.py defines each).
FUNCTIONS = ("line", "sin", "parabola", "cubic", "abs", "step")
TASKS = ("classification", "regression")
# Data sets with a real-valued target for data.task = "regression" (csv: the target column as numbers).
REGRESSION_DATASETS = ("plane", "gaussian", "csv")
INITS = ("default", "he", "xavier", "normal", "small", "large", "zeros")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine")
SEARCH_METHODS = ("random", "halving", "pbt")
SAMPLERS = ("random", "tpe")
# A search space key's distribution: exactly one of these, e.g. { log_uniform = [1e-4, 1] }.
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "choice")

# An experiment's name and ``experiment`` become file names (``NAME-loss.png``, ``runs/NAME-…``).
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")

# The course's named initialisations: "small" and "large" are normal draws with these std.
INIT_PRESET_STD = {"small": 1e-3, "large": 1.0}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataConfig(_Strict):
    name: Literal[DATASETS] = "moons"
    task: Literal[TASKS] = "classification"
    n_samples: int = Field(600, ge=4)
    noise: float | None = Field(None, ge=0)  # None: the generator's usual amount (see data.py)
    seed: int = 42
    n_classes: int | None = Field(None, ge=2)  # blobs centres, spiral arms
    function: Literal[FUNCTIONS] | None = None  # data.name = "function": the curve (None: "sin")
    split: list[float] = [0.7, 0.3]
    stratify: bool = True
    scale: Literal["none", "standard", "minmax"] = "standard"
    # The rows the scaler is fitted on: the train split (held-out rows stay unseen until they are
    # scored), or all rows before the split, as course 004 does (to reproduce its arrays exactly).
    scale_on: Literal["train", "all"] = "train"
    path: str | None = None  # csv only, relative to the config file
    features: list[str] | None = None  # input columns or transforms: x1, x1^2, x1*x2, sin(x1)
    target: str = "y"

    @field_validator("split")
    @classmethod
    def _split_fractions(cls, split: list[float]) -> list[float]:
        if len(split) not in (2, 3):
            raise ValueError("expected [train, val] or [train, val, test] fractions")
        if any(not (0 < f < 1) for f in split):
            raise ValueError("each fraction must be between 0 and 1")
        if sum(split) > 1 + 1e-9:
            raise ValueError(f"fractions must sum to at most 1 (they sum to {sum(split):g})")
        return split

    @model_validator(mode="after")
    def _options_fit_data(self) -> DataConfig:
        if self.name == "csv" and not self.path:
            raise ValueError("data.name = 'csv' needs data.path = 'FILE.csv'")
        if self.name in FIXED_DATASETS:
            for key, why in {"n_samples": " (it has its own rows)", "noise": "",
                             "n_classes": " (it has its own classes)"}.items():
                if getattr(self, key) != DataConfig.model_fields[key].default:
                    raise ValueError(f"data.name = {self.name!r} is a fixed data set (scikit-learn's): "
                                     f"data.{key} does not apply{why}: remove it")
        if self.function is not None and self.name != "function":
            raise ValueError(f"data.function applies to data.name = 'function' only (got data.name = {self.name!r})")
        if self.task == "regression" and self.name not in REGRESSION_DATASETS:
            raise ValueError(f"data.task = 'regression' needs data.name = one of {', '.join(REGRESSION_DATASETS)} "
                             f"(got {self.name!r})")
        if self.task == "classification" and self.name == "plane":
            raise ValueError("data.name = 'plane' has a real-valued target: set data.task = 'regression'")
        return self


class ModelConfig(_Strict):
    hidden: list[int] = [32]
    # One activation for every hidden layer, or a list with one per hidden layer.
    activation: str | list[str] = "relu"
    # Inverted dropout after each hidden layer's activation while training (off at evaluation): the
    # probability of dropping a unit, for every hidden layer or one per hidden layer.
    dropout: float | list[float] = 0.0
    init: Literal[INITS] = "default"
    init_std: float = Field(0.01, gt=0)  # for init = "normal"

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, hidden: list[int]) -> list[int]:
        if any(h < 1 for h in hidden):
            raise ValueError("every hidden layer needs at least 1 unit")
        return hidden

    @field_validator("activation", "dropout", mode="before")
    @classmethod
    def _one_or_one_per_layer(cls, value: Any, info: ValidationInfo) -> Any:
        rates = info.field_name == "dropout"
        for item in value if isinstance(value, list) else [value]:
            if rates and (isinstance(item, bool) or not isinstance(item, int | float) or not 0 <= item < 1):
                raise ValueError("expected a dropout rate in [0, 1), or a list of them with one per hidden layer")
            if not rates and (not isinstance(item, str) or item not in ACTIVATIONS):
                raise ValueError(f"unknown activation {item!r}: expected one of {', '.join(map(repr, ACTIVATIONS))}, "
                                 "or a list of them with one per hidden layer")
        hidden = info.data.get("hidden")  # validated before (declared first); absent if it was invalid
        if isinstance(value, list) and hidden is not None and len(value) != len(hidden):
            raise ValueError(f"expected one value, or a list of {len(hidden)} {'rates' if rates else 'names'} "
                             f"(one per hidden layer of model.hidden = {hidden})")
        return value  # (a rate written as TOML's integer 0 becomes a float as the field validates it)

    @property
    def activations(self) -> list[str]:
        """The activation of each hidden layer."""
        return self._per_layer(self.activation)

    @property
    def dropouts(self) -> list[float]:
        """The dropout rate after each hidden layer."""
        return self._per_layer(self.dropout)

    def _per_layer(self, value: Any) -> list:
        return list(value) if isinstance(value, list) else [value] * len(self.hidden)

    @property
    def activation_label(self) -> str:
        """The activation(s) in a few characters: "relu", or "relu,tanh" layer by layer."""
        return ",".join(self.activation) if isinstance(self.activation, list) else self.activation


class ScheduleConfig(_Strict):
    name: Literal[SCHEDULES] = "constant"
    step_size: int = Field(30, ge=1)  # step: epochs between decays
    gamma: float = Field(0.1, gt=0, le=1)  # step, exponential: decay factor
    t_max: int | None = Field(None, ge=1)  # cosine: period in epochs (default: all epochs)
    eta_min: float = Field(0.0, ge=0)  # cosine: floor


class OptimConfig(_Strict):
    name: Literal[OPTIMIZERS] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float | None = Field(None, ge=0, lt=1)  # None: 0.9 for momentum/nesterov, else 0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    alpha: float = Field(0.99, gt=0, lt=1)  # rmsprop smoothing
    weight_decay: float | None = Field(None, ge=0)  # None: 0.01 for adamw, else 0 (L2)
    l1: float = Field(0.0, ge=0)  # adds l1 * Σ|w| over the weights (not biases) to the training loss
    schedule: ScheduleConfig = ScheduleConfig()

    @field_validator("betas", mode="before")
    @classmethod
    def _betas_from_list(cls, betas: Any) -> Any:
        return tuple(betas) if isinstance(betas, list) else betas

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in betas):
            raise ValueError("each beta must be in [0, 1)")
        return betas

    @property
    def momentum_value(self) -> float:
        default = 0.9 if self.name in ("momentum", "nesterov") else 0.0
        return default if self.momentum is None else self.momentum

    @property
    def weight_decay_value(self) -> float:
        default = 0.01 if self.name == "adamw" else 0.0
        return default if self.weight_decay is None else self.weight_decay


class EarlyStoppingConfig(_Strict):
    patience: int = Field(20, ge=1)
    min_delta: float = Field(0.0, ge=0)
    monitor: Literal["val_loss", "val_acc"] = "val_loss"
    restore_best: bool = True


class TrainConfig(_Strict):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=0)  # 0 = full batch
    early_stopping: EarlyStoppingConfig | None = None
    dtype: Literal["float32", "float64"] = "float32"


class SearchConfig(_Strict):
    """``[search]``: trials sampled from ``space`` (one distribution per dotted key) instead of a grid.

    ``random`` trains every trial for every epoch; ``halving`` (successive halving) trains all
    trials to ``min_epochs``, keeps the best 1/``eta`` of them by val loss, trains those ``eta``
    times as long, and so on to ``train.epochs``; ``pbt`` (population-based training) every
    ``interval`` epochs lets the worst ``quantile`` of the trials copy the weights and optimizer
    state of the best ``quantile`` and multiply their ``optim.*`` values by one of ``perturb``.
    ``sampler = "tpe"`` (with ``random``) asks Optuna's TPE sampler for the trials ``wave`` at a
    time, each wave trained as one population and told to it before the next is asked.
    """

    method: Literal[SEARCH_METHODS] = "random"
    sampler: Literal[SAMPLERS] = "random"
    wave: int = Field(16, ge=1)
    trials: int = Field(16, ge=1)
    seed: int = 0
    space: dict[str, dict[str, list[Any]]]
    eta: int = Field(3, ge=2)
    min_epochs: int = Field(1, ge=1)
    interval: int = Field(5, ge=1)
    quantile: float = Field(0.25, gt=0, le=0.5)
    perturb: list[float] = [0.8, 1.25]

    @field_validator("space")
    @classmethod
    def _distributions(cls, space: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
        if not space:
            raise ValueError("expected at least one key, e.g. \"optim.lr\" = { log_uniform = [1e-4, 1] }")
        for key, dist in space.items():
            if problem := _distribution_problem(dist):
                raise ValueError(f"{key}: {problem}")
        return space

    @field_validator("perturb")
    @classmethod
    def _positive_factors(cls, perturb: list[float]) -> list[float]:
        if not perturb or any(f <= 0 for f in perturb):
            raise ValueError("expected a non-empty list of positive factors, e.g. [0.8, 1.25]")
        return perturb

    @model_validator(mode="after")
    def _method_fits_sampler_and_space(self) -> SearchConfig:
        if self.sampler == "tpe" and self.method != "random":
            raise ValueError(f"search.sampler = 'tpe' chooses trials trained to the end: use method = 'random' "
                             f"(got {self.method!r})")
        if self.method == "pbt":
            for key, dist in self.space.items():
                if not key.startswith("optim.") or "choice" in dist or key == "optim.name":
                    raise ValueError(f"{key}: pbt changes optimizer numbers while training: every space key must "
                                     "be a numeric optim.* key (log_uniform, uniform or int)")
        return self


def _distribution_problem(dist: dict[str, list[Any]]) -> str | None:
    """What is wrong with one key's distribution, if anything."""
    expected = "expected one of { log_uniform = [low, high] }, { uniform = [low, high] }, { int = [low, high] }, " \
               "{ choice = [values...] }"
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        return f"{expected} (got {dist!r})"
    (kind, values), = dist.items()
    if kind == "choice":
        return None if values else "choice needs at least one value"
    number = int if kind == "int" else int | float
    numbers = all(isinstance(v, number) and not isinstance(v, bool) for v in values)
    if len(values) != 2 or not numbers or not values[0] <= values[1] or (kind != "int" and values[0] == values[1]):
        kind_of = "integers" if kind == "int" else "numbers"
        return f"{kind} expects [low, high], two {kind_of} with low < high (got {values!r})"
    if kind == "log_uniform" and values[0] <= 0:
        return f"log_uniform expects 0 < low < high (got {values!r})"
    return None


class RunConfig(_Strict):
    name: str = "trainlab"
    description: str = ""
    experiment: str | None = None  # the `experiment` column of runs.csv; defaults to name
    seeds: int | list[int] = 1
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    grid: dict[str, list[Any]] = {}
    search: SearchConfig | None = None

    @model_validator(mode="after")
    def _pbt_without_early_stopping(self) -> RunConfig:
        if self.search and self.search.method == "pbt" and self.train.early_stopping:
            raise ValueError("search.method = 'pbt' copies weights between models: it cannot early-stop them "
                             "(remove [train.early_stopping])")
        return self

    @field_validator("name", "experiment")
    @classmethod
    def _file_name_stem(cls, name: str | None) -> str | None:
        if name is not None and not SAFE_NAME.fullmatch(name):
            raise ValueError("expected 1-64 letters, digits, '-', '_' or '.', not starting with '.' "
                             "(it names the output files)")
        return name

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds: int | list[int]) -> int | list[int]:
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError("seeds must be a count ≥ 1 or a non-empty list of integers")
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return seeds

    @field_validator("grid")
    @classmethod
    def _grid_lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid key {key!r} has no values")
        return grid

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    @property
    def varied_keys(self) -> list[str]:
        """The keys that differ between runs: the grid's, then the search space's."""
        return list(self.grid) + [k for k in (self.search.space if self.search else {}) if k not in self.grid]

    def at(self, values: dict[str, Any]) -> RunConfig:
        """One setting of this experiment, without its grid: ``cfg.at({"optim.name": "adam"})``.

        Keys are dotted as in ``[grid]``; any key may be set, not only the grid's.
        """
        return with_values(self, values, f"{self.experiment_name}.at()")


class RunSpec(BaseModel):
    """One concrete run: a grid point and a seed, with the config it resolves to."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    experiment: str
    group: str  # the grid point without the seed, e.g. "activation=relu"
    seed: int
    grid_values: dict[str, Any]
    config: RunConfig


# ---------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a TOML config, apply ``KEY=VALUE`` overrides and validate it."""
    path = Path(path)
    with reading(path, "config"):
        text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: TOML syntax error: {e}") from None
    raw = apply_overrides(raw, overrides)
    _resolve_csv_path(raw, path.parent)
    return config_from_dict(raw, source=str(path))


@contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Reading the file ``path``: a missing or unreadable file is a BadInput naming it (``what``: config, CSV)."""
    try:
        yield
    except FileNotFoundError:
        raise BadInput(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot read {what} ({getattr(e, 'strerror', None) or e})") from None


# A grid of up to this many points is checked point by point when it is loaded; a larger one value
# by value (its size is refused before it is expanded unless the user says to go on: budget.py).
MAX_POINTS_CHECKED = 10_000


def config_from_dict(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a plain dict (as read from TOML) into a RunConfig, with one-line errors."""
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as e:
        raise BadInput(f"{source}: {_describe(e)}") from None
    if cfg.search:  # the ends of each range, and every choice, must give a valid config
        for key, dist in cfg.search.space.items():
            if key in cfg.grid:
                raise BadInput(f"{source}: search.space.{key}: also a [grid] key (vary it in one of them)")
            for value in next(iter(dist.values())):
                with_values(cfg, {key: value}, f"{source}: search.space.{key}")
    if math.prod(len(v) for v in cfg.grid.values()) <= MAX_POINTS_CHECKED:
        for values in grid_points(cfg):
            with_values(cfg, values, source)  # every grid point must be a valid config
    else:  # each value on its own here (~50 µs a point); expand() checks every point
        for key, values in cfg.grid.items():
            for value in values:
                with_values(cfg, {key: value}, source)
    return cfg


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set model.hidden=[16,16]``: values are TOML (bare words are strings)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=0.01")
        value = parse_value(text.strip())
        if key.startswith("grid."):
            raw.setdefault("grid", {})[key.removeprefix("grid.")] = value
        else:
            _set_dotted(raw, key, value)
    return raw


def parse_value(text: str) -> Any:
    """A TOML value (``0.01``, ``[16, 16]``, ``true``, ``"relu"``), or the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BadInput(f"--set {key}: {part!r} is not a table")
        node = child
    node[leaf] = value


def _resolve_csv_path(raw: dict[str, Any], base: Path) -> None:
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        p = Path(data["path"]).expanduser()
        data["path"] = str(p if p.is_absolute() else (base / p).resolve())


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and err["type"] != "missing" and not isinstance(err["input"], dict):
            msg = f"{msg} (got {err['input']!r})"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- grid expansion


def expand(cfg: RunConfig) -> list[RunSpec]:
    """Every grid point times every search trial (with a ``[search]``) times every seed, in a stable
    order with readable run ids. A trial is a setting (``group``), its grid and sampled values the
    grid values; with ``sampler = "tpe"`` the sampled values are chosen while the search trains
    (``search.tpe_engine``): until then a trial has only its grid values."""
    search = cfg.search
    if not search:
        drawn = [{}]  # each grid point is one setting
    elif search.sampler == "tpe":
        drawn = [{}] * search.trials
    else:
        drawn = sample(search)
    specs = []
    for point in grid_points(cfg):
        prefix = ",".join(f"{short_key(k, cfg.grid)}={format_value(v)}" for k, v in point.items())
        for i, sampled in enumerate(drawn):
            values = {**point, **sampled}
            run_cfg = with_values(cfg, values, f"search trial {i}" if search else "grid")
            trial = f"trial={i:0{len(str(search.trials - 1))}d}" if search else ""  # zero-padded: they sort
            group = ",".join(filter(None, [prefix, trial]))
            for seed in cfg.seed_list:
                specs.append(RunSpec(run_id="/".join(filter(None, [cfg.experiment_name, group, f"seed={seed}"])),
                                     experiment=cfg.experiment_name, group=group or cfg.experiment_name, seed=seed,
                                     grid_values=values, config=run_cfg))
    return specs


def sample(search: SearchConfig) -> list[dict[str, Any]]:
    """``search.trials`` settings drawn from ``search.space`` with ``search.seed``: the same seed, the same trials."""
    import numpy as np

    rng = np.random.default_rng(search.seed)
    return [{key: draw(dist, rng) for key, dist in search.space.items()} for _ in range(search.trials)]


def draw(dist: dict[str, list[Any]], rng) -> Any:
    """A value of one key's distribution, from the numpy Generator ``rng``."""
    (kind, values), = dist.items()
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(values[0]), math.log(values[1]))))
    if kind == "uniform":
        return float(rng.uniform(values[0], values[1]))
    if kind == "int":
        return int(rng.integers(values[0], values[1] + 1))
    return values[int(rng.integers(len(values)))]  # choice


def values_label(values: dict[str, Any]) -> str:
    """``lr=0.0123, hidden=[32]``: a trial's sampled values for a reader."""
    return ", ".join(f"{short_key(k, values)}={format_value(v)}" for k, v in values.items())


def rungs(search: SearchConfig, epochs: int) -> list[int]:
    """The epochs at which successive halving compares the trials: min_epochs × eta^k, before the last."""
    out, rung = [], search.min_epochs
    while rung < epochs:
        out.append(rung)
        rung *= search.eta
    return out


def grid_points(cfg: RunConfig) -> list[dict[str, Any]]:
    return [dict(zip(cfg.grid, combo)) for combo in itertools.product(*cfg.grid.values())]


def with_values(cfg: RunConfig, values: dict[str, Any], source: str) -> RunConfig:
    raw = cfg.model_dump(mode="python", exclude={"grid", "search"})
    for key, value in values.items():
        if "." not in key or key.startswith("search."):  # (seeds, name, grid, ...: not a setting of one run)
            raise BadInput(f"{source}: grid key {key!r}: expected a dotted key such as 'model.activation'")
        _set_dotted(raw, key, value)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise BadInput(f"{source}: grid point {values}: {_describe(e)}") from None


def short_key(key: str, grid: dict[str, Any]) -> str:
    """The last part of a dotted key, unless another grid key ends the same way."""
    leaf = key.rsplit(".", 1)[-1]
    clashes = [k for k in grid if k.rsplit(".", 1)[-1] == leaf]
    return leaf if len(clashes) == 1 else key


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def to_toml(cfg: RunConfig) -> str:
    """The config as TOML, every value written out (defaults included)."""
    import tomli_w

    raw = cfg.model_dump(mode="json", exclude_none=True)
    if not raw.get("grid"):
        raw.pop("grid", None)
    return tomli_w.dumps(raw)
