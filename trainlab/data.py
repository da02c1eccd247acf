"""Data sets: generators, the CSV loader, the train/val/test split and scaling.

``make_dataset(cfg)`` returns a ``Dataset``: model inputs, the raw columns, and ``prepare``, which
maps any raw points (a plotting grid, say) through the same feature transforms and scaler. A
``Dataset`` is plain data: it pickles without scikit-learn (a Ray cluster receives it as it is).
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
import os
import pickle
import re
import stat
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from trainlab.config import DataConfig, RunConfig, reading, with_values
from trainlab.errors import BadInput

# scikit-learn is imported where it is used: its import is slow, and commands that never make a
# data set (list, report) need not pay it.

# The noise a generator uses when the config leaves `noise` unset.
DEFAULT_NOISE = {"moons": 0.25, "circles": 0.1, "xor": 0.1, "spiral": 0.2, "blobs": 1.0, "gaussian": 1.0,
                 "function": 0.05}
# For data.task = "regression" the noise is the std of the Gaussian noise added to the target.
DEFAULT_REGRESSION_NOISE = {"plane": 0.05, "gaussian": 0.05}
DEFAULT_CLASSES = {"blobs": 3, "spiral": 3}
DEFAULT_FUNCTION = "sin"

# The curves of data.name = "function" (TensorFlow Playground's issue #252): points uniform in
# [-1, 1]², class 1 above the curve x2 = f(x1), class 0 below. A fixed set of named curves rather
# than an expression to evaluate: a config (or a browser) never runs code.
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "line": lambda x: x / 2,
    "sin": lambda x: np.sin(3 * x) / 2,
    "parabola": lambda x: 1.5 * x**2 - 0.6,
    "cubic": lambda x: 2 * x**3 - 1.5 * x,
    "abs": lambda x: np.abs(x) - 0.5,
    "step": lambda x: np.where(x > 0, 0.5, -0.5),
}


@dataclass(frozen=True)
class FixedData:
    """One of scikit-learn's bundled data sets (``sklearn.datasets.load_NAME``): its size and classes for
    ``trainlab list`` (tests/test_data.py checks them against the loader)."""

    rows: int
    inputs: int
    classes: int
    about: str


FIXED = {  # config.FIXED_DATASETS names these
    "digits": FixedData(1797, 64, 10, "8×8 images of handwritten digits, pixel values 0-16"),
    "iris": FixedData(150, 4, 3, "sepal and petal sizes of three species of iris"),
    "wine": FixedData(178, 13, 3, "chemical analysis of wines from three cultivars"),
    "breast_cancer": FixedData(569, 30, 2, "cell nuclei measurements, malignant or benign"),
}

# The XOR-pattern points of the course's backprop lab (x1, x2, y), shipped with trainlab.
EXAMPLE_XOR_CSV = Path(__file__).parent / "datasets" / "xor_pattern.csv"


@dataclass(frozen=True)
class Dataset:
    """A split, scaled data set. ``X_*`` are model inputs; ``raw_*`` the original columns."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    raw_train: np.ndarray
    raw_val: np.ndarray
    raw_test: np.ndarray | None
    n_classes: int  # the model's outputs: the classes, or 1 for regression
    columns: list[str]  # raw column names
    features: list[str]  # model input names (columns or transforms of them)
    prepare: Inputs = field(repr=False)  # raw points → model inputs
    task: str = "classification"  # or "regression": y is float, the loss is MSE
    class_names: list[str] | None = None  # what each class index stands for, where the data names them
    labels: list[str] | None = None  # the class labels of the user's data (a CSV's, y's) by index, if not 0..k-1

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @property
    def in_dim(self) -> int:
        return self.X_train.shape[1]


# ---------------------------------------------------------------------------- generators


def generate(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The full data set (before splitting) as float64 points and integer labels (float targets for regression)."""
    from sklearn import datasets as skd

    if cfg.name == "csv":
        X, y, _, _ = load_csv(cfg.path, cfg.target, regression=cfg.task == "regression")
        return X, y
    if cfg.name in FIXED:
        X, y, _, _ = load_fixed(cfg.name)
        return X, y
    n, seed = cfg.n_samples, cfg.seed
    if cfg.task == "regression":
        noise = cfg.noise if cfg.noise is not None else DEFAULT_REGRESSION_NOISE[cfg.name]
        return _regression(cfg.name, n, noise, seed)
    noise = cfg.noise if cfg.noise is not None else DEFAULT_NOISE[cfg.name]
    k = cfg.n_classes or DEFAULT_CLASSES.get(cfg.name, 2)
    if cfg.name in ("moons", "circles", "xor", "gaussian", "function") and k != 2:
        raise BadInput(f"data.n_classes: {cfg.name} has 2 classes (got {k})")
    match cfg.name:
        case "moons":
            X, y = skd.make_moons(n_samples=n, noise=noise, random_state=seed)
        case "circles":
            X, y = skd.make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
        case "blobs":
            X, y = skd.make_blobs(n_samples=n, centers=k, cluster_std=noise, random_state=seed)
        case "xor":
            X, y = _uniform(n, noise, seed, lambda X: (X[:, 0] > 0) ^ (X[:, 1] > 0))
        case "spiral":
            X, y = _spiral(n, noise, k, seed)
        case "gaussian":
            X, y = _gaussian(n, noise, seed)
        case "function":
            curve = FUNCTIONS[cfg.function or DEFAULT_FUNCTION]
            X, y = _uniform(n, noise, seed, lambda X: X[:, 1] > curve(X[:, 0]))
    return X.astype(np.float64), y.astype(np.int64)


def column_names(cfg: DataConfig) -> list[str]:
    """The raw columns of a generated or bundled data set (a CSV's are in its header)."""
    return load_fixed(cfg.name)[2] if cfg.name in FIXED else ["x1", "x2"]


GENERATED_ABOUT = {
    "moons": "two interleaved half circles",
    "circles": "a circle inside a ring",
    "xor": "class = whether x1 and x2 have different signs",
    "spiral": "interleaved spiral arms",
    "blobs": "Gaussian clusters",
    "gaussian": "two Gaussian clouds (regression: two bumps)",
    "plane": "target (x1 + x2) / 2",
    "function": "above or below x2 = f(x1), data.function: " + ", ".join(FUNCTIONS),
}


def describe(name: str) -> str:
    """A data set's size, inputs and classes, and what it is, in a line (``trainlab list``)."""
    if name in FIXED:
        d = FIXED[name]
        return f"{d.rows} rows, {d.inputs} inputs, {d.classes} classes: {d.about}"
    if name == "csv":
        return "your CSV file (data.path): numeric columns and a target (data.target, default y)"
    if name == "plane":
        classes = "regression"
    elif name in DEFAULT_CLASSES:
        classes = f"{DEFAULT_CLASSES[name]} classes (data.n_classes)"
    else:
        classes = "2 classes" + (" or regression" if name in DEFAULT_REGRESSION_NOISE else "")
    return f"n_samples rows, 2 inputs, {classes}: {GENERATED_ABOUT[name]}"


@functools.cache
def load_fixed(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """A data set scikit-learn ships: points, labels, column names (identifiers such as
    ``petal_length_cm``, usable in data.features) and class names. The arrays are read-only: shared."""
    from sklearn import datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    columns = [re.sub(r"\W+", "_", str(c).lower()).strip("_") for c in bunch.feature_names]
    X, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    X.flags.writeable = y.flags.writeable = False
    return X, y, columns, [str(c) for c in bunch.target_names]


def _uniform(n: int, noise: float, seed: int,
             label: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points in [-1, 1]² labelled ``label(X)`` (xor: whether x1 and x2 have different signs;
    function: above the curve); Gaussian noise of std ``noise`` then moves the points, not their labels."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X + rng.normal(0, noise, size=X.shape), label(X).astype(np.int64)


def _spiral(n: int, noise: float, arms: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``arms`` interleaved spirals, one class each, radius growing from 0 to 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % arms
    r = rng.uniform(0, 1, size=n)
    theta = 4 * r * math.pi / 1.5 + 2 * math.pi * y / arms + rng.normal(0, noise, size=n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1), y


def _gaussian(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two normal clouds centred at (-1, -1) and (1, 1) with standard deviation ``noise``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return np.where(y[:, None] == 1, 1.0, -1.0) + rng.normal(0, noise, size=(n, 2)), y


def _regression(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow Playground's regression problems on uniform points in [-1, 1]², targets in about [-1, 1].

    plane: y = (x1 + x2) / 2; gaussian: a positive bump at (0.5, 0.5) and a negative one at (-0.5, -0.5).
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    if name == "plane":
        y = X.sum(axis=1) / 2
    else:
        bump = lambda c: np.exp(-((X - c) ** 2).sum(axis=1) / (2 * 0.3**2))  # noqa: E731
        y = bump(0.5) - bump(-0.5)
    return X, y + rng.normal(0, noise, size=n)


# ---------------------------------------------------------------------------- CSV


def load_csv(path: str | Path | None, target: str = "y",
             regression: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], list[str] | None]:
    """Read a CSV of numeric feature columns and a class (or, for regression, a number) column.

    Returns X, y (class indices 0..k-1, or the numbers), the feature column names, and the class
    labels as the file writes them, index by index (None when they are the indices themselves).
    """
    path = Path(str(path))
    header, rows = read_csv_rows(path)
    if not header:
        raise BadInput(f"{path}: the CSV is empty; expected a header row such as x1,x2,y")
    if target not in header:
        separator = next((name for sep, name in SEPARATORS.items() if len(header) == 1 and sep in header[0]), None)
        if separator:
            raise BadInput(f"{path}: the columns are separated by {separator}; trainlab reads comma-separated "
                           f"columns (x1,x2,{target}): save the file as CSV with commas")
        what = "target" if regression else "class labels"
        raise BadInput(f"{path}: no column {target!r} for the {what} (columns: {', '.join(header)}); "
                       "set data.target to the label column's name")
    columns = [h for h in header if h != target]
    if not columns:
        raise BadInput(f"{path}: no feature columns besides {target!r}")
    t = header.index(target)
    X, labels = [], []
    for line, row in rows:
        X.append([csv_number(cell, path, line, name) for i, (name, cell) in enumerate(zip(header, row)) if i != t])
        labels.append(row[t].strip())
    if not X:
        raise BadInput(f"{path}: the CSV has a header but no data rows")
    if regression:
        return np.asarray(X, dtype=np.float64), _numeric_targets(rows, t, target, path), columns, None
    y, classes = _encode_labels(labels, path)
    return np.asarray(X, dtype=np.float64), y, columns, classes


# CSV files larger than this are refused before reading: trainlab's data sets are small, and
# reading a file into Python lists takes about 40 times its size in memory.
MAX_CSV_BYTES = 200_000_000
SEPARATORS = {"\t": "tabs", ";": "semicolons (';')", "|": "bars ('|')"}


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV's header (names stripped; empty for an empty file) and its non-blank rows, each with its
    line number for messages. A column named twice, or a row of another length, is a BadInput."""
    check_csv_file(path)
    with reading(path, "CSV"), path.open(newline="") as f:
        lines = list(csv.reader(f))
    header = [h.strip() for h in lines[0]] if lines else []
    repeated = next((h for h, n in Counter(header).items() if n > 1), None)
    if repeated is not None:
        raise BadInput(f"{path}: the header names the column {repeated!r} twice; expected each column once")
    rows = [(line, row) for line, row in enumerate(lines[1:], start=2) if any(cell.strip() for cell in row)]
    for line, row in rows:
        if len(row) != len(header):
            raise BadInput(f"{path}: row {line} has {len(row)} cells, expected {len(header)}")
    return header, rows


def csv_number(cell: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise BadInput(f"{path}: row {line}, column {column!r}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise BadInput(f"{path}: row {line}, column {column!r}: {cell!r} is not a finite number")
    return value


def check_csv_file(path: Path) -> None:
    """A regular file of a readable size: not a directory, a device such as /dev/zero, or a pipe."""
    with reading(path, "CSV"):
        info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{path}: is a directory; expected a CSV file")
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: not a regular file (a device or a pipe); expected a CSV file")
    if info.st_size > MAX_CSV_BYTES:
        raise BadInput(f"{path}: {info.st_size / 1e6:,.0f} MB is larger than the {MAX_CSV_BYTES / 1e6:,.0f} MB "
                       "trainlab reads; use a sample of the rows")


def _numeric_targets(rows: list[tuple[int, list[str]]], t: int, target: str, path: Path) -> np.ndarray:
    values = []
    for line, row in rows:
        cell = row[t].strip()
        try:
            values.append(float(cell))
        except ValueError:
            raise BadInput(f"{path}: row {line}, column {target!r}: {cell!r} is not a number "
                           "(data.task = 'regression' needs a numeric target)") from None
    return np.asarray(values, dtype=np.float64)


def _encode_labels(labels: list[str], path: Path) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels 0..k-1 stay as they are; any other labels are numbered in sorted order (numbers
    by value), and returned as the names of the classes 0..k-1."""
    try:
        as_float = [float(s) for s in labels]
        numeric = all(math.isfinite(v) and v == int(v) for v in as_float)
    except ValueError:
        numeric = False
    else:
        fractional = next((s for s, v in zip(labels, as_float) if math.isfinite(v) and v != int(v)), None)
        if fractional is not None:
            raise BadInput(f"{path}: the target column holds real numbers such as {fractional}, not classes: for "
                           "a real-valued target set data.task = \"regression\"")
    if numeric:
        classes, y = np.unique([int(v) for v in as_float], return_inverse=True)
        names = None if classes.tolist() == list(range(len(classes))) else [str(c) for c in classes]
    else:
        # as objects: a str array would hold every label at the longest one's width
        classes, y = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
        names = classes.tolist()
    if len(classes) < 2:
        raise BadInput(f"{path}: the class column has a single class ({classes[0]}); need at least 2")
    return y, names


def write_csv(path: str | Path, X: np.ndarray, y: np.ndarray, columns: list[str] | None = None) -> None:
    columns = columns or [f"x{i + 1}" for i in range(X.shape[1])]
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*columns, "y"])
        for xi, yi in zip(X, y):
            w.writerow([*(f"{v:.6g}" for v in xi), f"{yi:.6g}" if y.dtype.kind == "f" else int(yi)])


# ---------------------------------------------------------------------------- features


_TRANSFORM = re.compile(r"^(?:(?P<sq>\w+)\^2|(?P<a>\w+)\*(?P<b>\w+)|sin\((?P<sin>\w+)\))$")


def feature_function(name: str, columns: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    """``x1`` → the column; ``x1^2``, ``x1*x2``, ``sin(x1)`` → that transform of columns."""
    def col(c: str) -> int:
        if c not in columns:
            raise BadInput(f"data.features: {name!r} uses {c!r}, which is not a column ({', '.join(columns)})")
        return columns.index(c)

    m = _TRANSFORM.match(name.replace(" ", ""))
    if name in columns:
        ufunc, used = np.positive, [name]  # the column as it is
    elif not m:
        raise BadInput(f"data.features: {name!r} is not a column or a transform (expected e.g. x1, x1^2, x1*x2, "
                       "sin(x1))")
    elif m["sq"]:
        ufunc, used = np.square, [m["sq"]]
    elif m["sin"]:
        ufunc, used = np.sin, [m["sin"]]
    else:
        ufunc, used = np.multiply, [m["a"], m["b"]]
    return functools.partial(_transform, ufunc=ufunc, columns=[col(c) for c in used])


def _transform(X: np.ndarray, ufunc: np.ufunc, columns: list[int]) -> np.ndarray:
    # (a module-level function and numpy's ufuncs, not a lambda: a Dataset's transforms must pickle)
    return ufunc(*(X[:, i] for i in columns))


@dataclass(frozen=True)
class Inputs:
    """Raw points → model inputs: the feature transforms, then the scaling fitted on the training split
    (or on every row, ``data.scale_on = "all"``).

    scikit-learn fits the scaler; what it learned is kept as two arrays and applied as its
    ``transform`` applies it (standard: ``(Z - mean) / std``; minmax: ``Z * factor + offset``).
    """

    transforms: list[Callable[[np.ndarray], np.ndarray]]
    scale: str = "none"  # standard | minmax | none
    a: np.ndarray | None = None  # standard: the mean; minmax: the factor
    b: np.ndarray | None = None  # standard: the std (zeros as 1); minmax: the offset

    def features(self, R: np.ndarray) -> np.ndarray:
        R = np.asarray(R, dtype=np.float64)
        return np.stack([f(R) for f in self.transforms], axis=1)

    def fitted(self, scale: str, R: np.ndarray) -> Inputs:
        """These transforms with a ``scale`` scaler fitted on the raw points ``R``."""
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # overflows: make_dataset says so
            if scale == "standard":
                s = StandardScaler().fit(self.features(R))
                return Inputs(self.transforms, scale, s.mean_, s.scale_)
            if scale == "minmax":
                s = MinMaxScaler().fit(self.features(R))
                return Inputs(self.transforms, scale, s.scale_, s.min_)
        return Inputs(self.transforms)

    def __call__(self, R: np.ndarray) -> np.ndarray:
        Z = self.features(R)
        if self.scale == "standard":
            return (Z - self.a) / self.b
        if self.scale == "minmax":
            return Z * self.a + self.b
        return Z


# Model inputs beyond this size make the first layer's outputs, and with them the loss and its
# gradients, so large that training blows up whatever the learning rate.
HUGE_INPUT = 1e4


def huge_inputs(data: Dataset) -> str | None:
    """What is wrong with inputs too large to train on, or None."""
    largest = float(np.abs(data.X_train).max(initial=0.0))
    if largest <= HUGE_INPUT:
        return None
    return (f"the inputs are huge (|x| up to {largest:.3g}, data.scale = {data.prepare.scale!r}): the layers' "
            "outputs overflow whatever the learning rate")


# ---------------------------------------------------------------------------- split and scale


def make_dataset(cfg: DataConfig) -> Dataset:
    """Generate or load the data, split it by ``cfg.split`` and fit the scaler on train (``cfg.scale_on``)."""
    if cfg.name == "csv":
        raw, y, columns, labels = load_csv(cfg.path, cfg.target, regression=cfg.task == "regression")
        return split_and_scale(raw, y, columns, cfg, labels, labels)
    raw, y = generate(cfg)
    return split_and_scale(raw, y, column_names(cfg), cfg, load_fixed(cfg.name)[3] if cfg.name in FIXED else None)


def dataset_from_arrays(X, y, cfg: DataConfig) -> Dataset:
    """Points ``X`` (rows × features) and targets ``y`` given in Python, split and scaled as ``cfg``
    says (its ``split``, ``stratify``, ``scale``, ``features``, ``task``), as a CSV of them would be."""
    try:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise BadInput(f"data=(X, y): X must be numbers ({e})") from None
    if X.ndim != 2 or X.shape[1] < 1:
        raise BadInput(f"data=(X, y): X has shape {X.shape}; expected rows × features, e.g. (600, 2)")
    if y.ndim != 1 or len(y) != len(X):
        raise BadInput(f"data=(X, y): y has shape {y.shape}; expected one target per row of X, shape ({len(X)},)")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad):
        raise BadInput(f"data=(X, y): X has NaN or infinite values (row {bad[0]}); expected finite numbers")
    if cfg.task == "regression":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise BadInput("data=(X, y): data.task = 'regression' needs numeric targets y") from None
        if not np.isfinite(y).all():
            raise BadInput(f"data=(X, y): y has NaN or infinite values (row {np.flatnonzero(~np.isfinite(y))[0]})")
        labels = None
    else:
        y, labels = _encode_labels([str(v) for v in (y.astype(int) if y.dtype == bool else y).tolist()],
                                   Path("data=(X, y)"))  # (booleans: the classes 0 and 1)
    return split_and_scale(X, y, [f"x{i + 1}" for i in range(X.shape[1])], cfg, labels, labels)


def split_and_scale(raw: np.ndarray, y: np.ndarray, columns: list[str], cfg: DataConfig,
                    class_names: list[str] | None = None, labels: list[str] | None = None) -> Dataset:
    features = cfg.features or columns
    if not features:
        raise BadInput("data.features: expected at least one input feature")
    funcs = [feature_function(f, columns) for f in features]
    regression = cfg.task == "regression"
    where = f"{cfg.path}: " if cfg.name == "csv" else ""
    try:  # a real-valued target has no classes to stratify by
        parts = split_indices(y, cfg.split, cfg.stratify and not regression, cfg.seed)
    except BadInput as e:
        raise BadInput(f"{where}{e}") from None
    prepare = Inputs(funcs).fitted(cfg.scale, raw[parts[0]] if cfg.scale_on == "train" else raw)
    with np.errstate(over="ignore", invalid="ignore"):
        X = [prepare(raw[p]) for p in parts]
    if not all(np.isfinite(x).all() for x in X):
        raise BadInput(f"{where}the inputs overflow when computed and scaled (data.scale = {cfg.scale!r}; raw values "
                       f"up to {np.abs(raw).max():.3g}): rescale the columns, or --set data.scale=minmax")
    train, val, test = parts if len(parts) == 3 else (*parts, None)
    return Dataset(X_train=X[0], y_train=y[train], X_val=X[1], y_val=y[val],
                   X_test=None if test is None else X[2], y_test=None if test is None else y[test],
                   raw_train=raw[train], raw_val=raw[val], raw_test=None if test is None else raw[test],
                   n_classes=1 if regression else int(y.max()) + 1, columns=columns, features=list(features),
                   prepare=prepare, task=cfg.task, class_names=class_names, labels=labels)


def split_indices(y: np.ndarray, fractions: list[float], stratify: bool, seed: int) -> list[np.ndarray]:
    """Index arrays for train, val (and test), sized by ``fractions`` of all rows."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    sizes = [int(round(f * n)) for f in fractions]
    if any(s < 1 for s in sizes) or sizes[0] < 2:
        raise BadInput(f"data.split: {n} rows are too few for the split {fractions} (each part needs at least 1 row)")
    # fractions that add up to 1 use every row (rounding would otherwise leave one out, or take one too many)
    sizes[-1] = n - sum(sizes[:-1]) if math.isclose(sum(fractions), 1) else min(sizes[-1], n - sum(sizes[:-1]))
    parts, rest = [], np.arange(n)
    try:
        for size in sizes[:-1]:
            take, rest = train_test_split(rest, train_size=size, test_size=len(rest) - size, random_state=seed,
                                          stratify=y[rest] if stratify else None)
            parts.append(take)
        if sizes[-1] < len(rest):
            rest, _ = train_test_split(rest, train_size=sizes[-1], random_state=seed,
                                       stratify=y[rest] if stratify else None)
        parts.append(rest)
    except ValueError as e:
        raise BadInput(f"data.split: cannot split {n} rows as {fractions}: {e}") from None
    return parts


# ---------------------------------------------------------------------------- cache


class DataCache:
    """Each distinct data config is generated, split and scaled once."""

    def __init__(self) -> None:
        self._cache: dict[str, Dataset] = {}
        self._helper: subprocess.Popen | None = None  # the process making data sets aside, until collected

    @staticmethod
    def key(cfg: RunConfig) -> str:
        return cfg.data.model_dump_json()

    def __call__(self, cfg: RunConfig) -> Dataset:
        key = self.key(cfg)
        if key not in self._cache and self._helper:
            self._collect()
        if key not in self._cache:
            self._cache[key] = make_dataset(cfg.data)
        return self._cache[key]

    @classmethod
    @contextmanager
    def made_aside(cls, cfgs: list[RunConfig]) -> Iterator[DataCache]:
        """A cache whose data sets, those of the experiments ``cfgs`` and their grids' ``data.*``
        values, a second Python process makes meanwhile: while a command that trains imports torch,
        scikit-learn's import and the data sets take the other core (benchmarks/README.md), and this
        process never imports scikit-learn. The helper writes nothing but its pipe; whatever it does
        not make (a bad CSV, or everything if it failed) is made here when asked for, and raises here.
        The helper is stopped when the block ends."""
        cache = cls()
        keys = list(dict.fromkeys(cls.key(c) for c in data_variants(cfgs)))
        if keys and "sklearn" not in sys.modules:  # once it is imported, making them here is quicker
            paths = [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
            # -P: the current directory's modules (a user's csv.py, another checkout's trainlab) stay out
            # of its sys.path; its own session: a Ctrl-C in the terminal reaches this process, which stops it.
            command = [sys.executable, "-P", "-c", "import sys, trainlab.data as d; d.make_aside(sys.argv[1:])",
                       *keys]
            with suppress(OSError, TypeError):  # no interpreter to start (an embedded Python): they are made here
                cache._helper = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                 stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            yield cache
        finally:
            if cache._helper:
                cache._helper.kill()
                cache._helper.stdout.close()
                cache._helper.wait()

    def _collect(self) -> None:
        made, _ = self._helper.communicate()  # (a Ctrl-C meanwhile: made_aside stops the helper)
        if self._helper.returncode == 0:
            with suppress(Exception):  # not its answer (something wrote to its stdout first): made here instead
                self._cache.update(pickle.loads(made))
        self._helper = None


# A grid over data.* values makes one data set per value; the helper makes at most this many (the
# first run waits for all it makes), the rest are made as they are needed.
MAX_MADE_ASIDE = 64


def data_variants(cfgs: list[RunConfig]) -> list[RunConfig]:
    """The experiments' configs at each combination of their grids' ``data.*`` values (up to MAX_MADE_ASIDE)."""
    variants = []
    for cfg in cfgs:
        axes = {k: v for k, v in cfg.grid.items() if k.startswith("data.")}
        combos = itertools.islice(itertools.product(*axes.values()), MAX_MADE_ASIDE)
        variants += [cfg] + [with_values(cfg, dict(zip(axes, combo)), "grid") for combo in combos if axes]
    return variants[:MAX_MADE_ASIDE]


def make_aside(keys: list[str]) -> None:
    """The helper of ``DataCache.made_aside``: given data configs (their keys, the configs as JSON), the
    data sets it could make (pickled, by key) on stdout."""
    answer, sys.stdout = sys.stdout.buffer, sys.stderr  # whatever a library prints stays out of the answer
    made = {}
    for key in keys:
        try:
            made[key] = make_dataset(DataConfig.model_validate_json(key))
        except BadInput:
            continue  # the parent makes it again, and says what is wrong
    answer.write(pickle.dumps(made, protocol=pickle.HIGHEST_PROTOCOL))
