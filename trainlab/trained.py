"""A trained model to keep and use: raw points in, classes or values out, as scikit-learn's
estimators do (``predict``, ``predict_proba``, ``score``).

``load_model(DIR, run_id)`` rebuilds a stored run: its network and its inputs (the feature
transforms and the scaler fitted on its training split, which ``data.py`` recomputes from the run's
config; refused when the data no longer matches its experiment's stored fingerprint).
``Model.save(path)`` writes one safetensors file: the weights, and as metadata the resolved config
(TOML) and the inputs (JSON); ``Model.load(path)`` reads it back, without pickle or data.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
import torch
from safetensors import SafetensorError, safe_open

from trainlab.config import RunConfig, config_from_dict, expand, to_toml, with_values
from trainlab.data import Dataset, Inputs, csv_number, feature_function, read_csv_rows
from trainlab.errors import BadInput
from trainlab.models import evaluating, model_from_params
from trainlab.store import STORE_NAME, Store, number_text, write_atomic
from trainlab.train import DTYPES

FORMAT = "trainlab.model/1"  # the "format" entry of a model file's metadata
# What a fitted scaler's two arrays are, named as scikit-learn's scalers name them
# (data.Inputs keeps them as ``a`` and ``b``).
SCALER_NUMBERS = {"standard": ("mean_", "scale_"), "minmax": ("scale_", "min_")}


class Model:
    """A trained network and the inputs it was trained on.

    ``X`` is rows of the data's raw columns (``model.columns``; a numpy array or a list of rows): the
    model computes its features and scales them as in training, in the run's dtype.
    ``network`` is the PyTorch module itself (eval mode), taking scaled features; ``save`` writes its
    weights as they are then. ``labels``: the classes as the training data wrote them (a CSV's
    ``setosa``, ``versicolor``, or ``1``, ``2``), index by index; None when they were 0..k-1.
    """

    def __init__(self, config: RunConfig, params: dict[str, np.ndarray], columns: list[str], features: list[str],
                 inputs: Inputs, run_id: str | None = None, labels: list[str] | None = None):
        self.config, self.run_id = config, run_id
        self.columns, self.features, self.inputs = list(columns), list(features), inputs
        self.labels = labels
        self.dtype = DTYPES[config.train.dtype]
        self.network = model_from_params(config.model, params, dtype=self.dtype)
        if labels is not None and len(labels) != self.network[-1].out_features:
            raise ValueError(f"{len(labels)} class labels for {self.network[-1].out_features} outputs")

    @property
    def regression(self) -> bool:
        return self.config.data.task == "regression"

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels ``predict`` returns, in the order of ``predict_proba``'s columns: the
        training data's own (integers where they are numbers), else 0, 1, …; None for a regression."""
        if self.regression:
            return None
        if self.labels is None:
            return np.arange(self.network[-1].out_features)
        try:
            return np.array([int(label) for label in self.labels])
        except ValueError:
            return np.array(self.labels)

    def __repr__(self) -> str:
        sizes = "→".join(map(str, [len(self.features), *self.config.model.hidden, self.network[-1].out_features]))
        run = f"run {self.run_id!r}, " if self.run_id else ""
        return (f"Model({run}{sizes} {self.config.model.activation}, {self.config.data.task}, "
                f"inputs {', '.join(self.columns)})")

    # ------------------------------------------------------------------ predicting

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (the largest output) for classification; the predicted values for regression."""
        outputs = self._outputs(X)
        return outputs[:, 0].double().numpy() if self.regression else self.classes[outputs.argmax(dim=1).numpy()]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, rows × classes (the softmax of the outputs); classification only."""
        if self.regression:
            name = f"run {self.run_id!r}" if self.run_id else "this model"
            raise BadInput(f"predict_proba: {name} is a regression (data.task = 'regression'): it predicts "
                           "values, not class probabilities; use predict")
        return torch.softmax(self._outputs(X).double(), dim=1).numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy for classification, R² for regression (scikit-learn's ``score``)."""
        from sklearn.metrics import accuracy_score, r2_score

        predicted = self.predict(X)
        y = np.asarray(y, dtype=np.float64 if self.regression else None)
        if y.shape != predicted.shape:
            raise BadInput(f"score: y has shape {y.shape}; expected one target per row of X, shape {predicted.shape}")
        return float(r2_score(y, predicted) if self.regression else accuracy_score(y, predicted))

    @torch.no_grad()
    def _outputs(self, X: Any) -> torch.Tensor:
        with evaluating(self.network):  # without dropout, even if the caller set network.train()
            return self.network(torch.tensor(self.inputs(self._rows(X)), dtype=self.dtype))

    def _rows(self, X: Any) -> np.ndarray:
        expected = f"rows × {len(self.columns)} columns ({', '.join(self.columns)})"
        try:
            R = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise BadInput(f"X: expected numbers, {expected} ({e})") from None
        if R.ndim != 2 or R.shape[1] != len(self.columns):
            one = " (one point is a list of one row: [[…]])" if R.ndim == 1 else ""
            raise BadInput(f"X has shape {R.shape}; expected {expected}{one}")
        bad = np.flatnonzero(~np.isfinite(R).all(axis=1))
        if len(bad):
            raise BadInput(f"X has NaN or infinite values (row {bad[0]}); expected finite numbers")
        return R

    # ------------------------------------------------------------------ the file

    def save(self, path: str | Path) -> Path:
        """Write the model as one safetensors file (replacing any file there) and return its path."""
        scaler = dict(zip(SCALER_NUMBERS.get(self.inputs.scale, ()),
                          (self.inputs.a.tolist(), self.inputs.b.tolist()) if self.inputs.a is not None else ()))
        metadata = {
            "format": FORMAT,
            "run_id": self.run_id or "",
            "config": to_toml(self.config),
            "inputs": json.dumps({"columns": self.columns, "features": self.features,
                                  "scale": self.inputs.scale, **scaler, "labels": self.labels}),
        }
        tensors = {name: w.detach().contiguous().numpy() for name, w in self.network.state_dict().items()}
        return write_file(path, safetensors.numpy.save(tensors, metadata))

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """The model in a safetensors file written by ``save`` (or ``trainlab export-model``)."""
        path = Path(path)
        if path.is_dir():
            raise BadInput(f"{path}: is a directory; expected a .safetensors model file")
        try:
            with safe_open(path, framework="np") as f:
                metadata = f.metadata() or {}
                params = {name: f.get_tensor(name) for name in f.keys()}
        except FileNotFoundError:
            raise BadInput(f"{path}: model file not found") from None
        except (SafetensorError, OSError) as e:
            raise BadInput(f"{path}: not a safetensors model file ({e})") from None
        if metadata.get("format") != FORMAT:
            raise BadInput(f"{path}: a safetensors file, but not a trainlab model (its metadata has no "
                           f"format = {FORMAT!r}); write one with trainlab export-model or Model.save")
        try:  # TOML's and JSON's decoding errors are ValueErrors
            raw_config, inputs = tomllib.loads(metadata["config"]), json.loads(metadata["inputs"])
            columns, features, scale = inputs["columns"], inputs["features"], inputs["scale"]
            a, b = ((np.asarray(inputs[k], dtype=np.float64) for k in SCALER_NUMBERS[scale]) if scale != "none"
                    else (None, None))
            labels = inputs.get("labels")
            if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
                raise TypeError(f"labels {labels!r} are not a list of strings")
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"{path}: the trainlab metadata is damaged ({type(e).__name__}: {e})") from None
        config = config_from_dict(raw_config, source=f"{path} (config)")
        prepare = Inputs([feature_function(f, columns) for f in features], scale, a, b)
        try:
            return cls(config, params, columns, features, prepare, metadata.get("run_id") or None, labels)
        except (KeyError, RuntimeError, ValueError) as e:  # weights (or labels) that do not fit the config's network
            raise BadInput(f"{path}: the weights do not fit the model its config describes ({e})") from None


# ---------------------------------------------------------------------------- from an output directory


def load_model(out_dir: str | Path, run_id: str | None = None, *, best: bool = False, experiment: str | None = None,
               data: Dataset | tuple[Any, Any] | None = None) -> Model:
    """The model of run ``run_id`` stored in ``out_dir``, or with ``best=True`` the run of
    ``experiment`` (needed when ``out_dir`` holds several) that the findings rank best on its
    experiment's metric (``findings.focus``). ``data``: the arrays or Dataset given to ``tl.run``
    for runs trained on them (they are not stored)."""
    from trainlab.api import ARRAYS_PATH, GivenData
    from trainlab.data import DataCache
    from trainlab.outdir import data_fingerprint
    from trainlab.runner import Results

    out_dir = Path(out_dir)
    if (run_id is None) == (not best):
        raise BadInput("load_model: give a run id or best=True (one of the two)")
    if not (out_dir / STORE_NAME).is_file():
        raise BadInput(f"{out_dir}: no {STORE_NAME} here (expected an output directory of trainlab run or lab)")
    results = Results(out_dir, data_for=GivenData(data) if data is not None else DataCache())
    runs = results.runs()
    run = best_run(runs, experiment, out_dir) if best else find_run(runs, run_id, out_dir)
    run_id = run["run_id"]
    experiment_cfg = results.config(run["experiment"])
    cfg = with_values(experiment_cfg, run["grid"], f"{out_dir} ({run_id})").model_copy(update={"seeds": [run["seed"]]})
    if cfg.data.path == ARRAYS_PATH and data is None:
        raise BadInput(f"{run_id} trained on arrays given to tl.run, which are not stored: "
                       "pass the same ones, tl.load_model(DIR, RUN_ID, data=(X, y))")
    with Store(out_dir) as store:
        stored = next(e["data_fingerprint"] for e in store.experiments() if e["experiment"] == run["experiment"])
    if stored and data_fingerprint(expand(experiment_cfg), results.data_for) != stored:
        source = f" ({cfg.data.path} changed)" if cfg.data.name == "csv" else ""
        raise BadInput(f"{out_dir}: the data of {run['experiment']!r} is no longer the data {run_id} trained "
                       f"on{source}, so its scaling cannot be recovered")
    params = results.params(run_id)
    if params is None or not all(np.isfinite(w).all() for w in params.values()):
        raise BadInput(f"{run_id} diverged: its weights are not finite, there is no model to use "
                       f"(status {run['status']!r})")
    dataset = results.data_for(cfg)
    return Model(cfg, params, dataset.columns, dataset.features, dataset.prepare, run_id, dataset.labels)


def find_run(runs: list[dict[str, Any]], run_id: str, out_dir: Path) -> dict[str, Any]:
    for r in runs:
        if r["run_id"] == run_id:
            return r
    ids = [r["run_id"] for r in runs]
    if not ids:
        raise BadInput(f"{out_dir}: no finished runs yet, so no run {run_id!r}")
    hint = difflib.get_close_matches(run_id, ids, n=3, cutoff=0.5) or ids[:3]
    more = f", … ({len(ids)} runs; see runs.csv)" if len(ids) > len(hint) else ""
    raise BadInput(f"{out_dir}: no run {run_id!r}; runs there include {', '.join(hint)}{more}")


def best_run(runs: list[dict[str, Any]], experiment: str | None, out_dir: Path) -> dict[str, Any]:
    """The run the findings would rank first: the best final value of the experiment's metric
    (lowest loss, highest accuracy) among the runs that did not diverge; the first in grid order on a tie."""
    from trainlab.findings import focus, lower_is_better

    names = list(dict.fromkeys(r["experiment"] for r in runs))
    if not names:
        raise BadInput(f"{out_dir}: no finished runs yet to pick the best of")
    if experiment is None:
        if len(names) > 1:
            raise BadInput(f"{out_dir} holds {len(names)} experiments ({', '.join(names)}), each judged on its own "
                           "metric: name the one to pick from (--experiment NAME; in Python experiment=NAME)")
        experiment = names[0]
    elif experiment not in names:
        raise BadInput(f"{out_dir}: no experiment {experiment!r} (found: {', '.join(names)})")
    metric = focus(experiment)
    sign = 1 if lower_is_better(metric) else -1
    scored = [r for r in runs if r["experiment"] == experiment and r["status"] != "diverged"
              and r[metric] is not None and math.isfinite(r[metric])]
    if not scored:
        raise BadInput(f"{out_dir}: every run of {experiment!r} diverged; there is no model to pick")
    return min(scored, key=lambda r: sign * r[metric])


# ---------------------------------------------------------------------------- CSV in, CSV out


def predict_csv(model: Model, path: str | Path) -> str:
    """The rows of the CSV at ``path`` as they are, with the model's predictions added: ``pred``,
    and for a classifier ``p_<class>``, the probability of each class. Columns other than the
    model's inputs (a label, an id) are kept and not used."""
    path = Path(path)
    header, rows = read_csv_rows(path)
    if not rows:
        raise BadInput(f"{path}: expected a header row ({','.join(model.columns)}) and at least one row of points")
    missing = [c for c in model.columns if c not in header]
    if missing:
        raise BadInput(f"{path}: no column {', '.join(map(repr, missing))}; the model's inputs are "
                       f"{', '.join(model.columns)} (columns found: {', '.join(header)})")
    added = ["pred"] + ([] if model.regression else [f"p_{c}" for c in model.classes])
    clash = [c for c in added if c in header]
    if clash:
        raise BadInput(f"{path}: already has a column {clash[0]!r}, which predict adds; rename or drop it")
    at = [header.index(c) for c in model.columns]
    X = np.array([[csv_number(row[k], path, line, header[k]) for k in at] for line, row in rows], dtype=np.float64)
    if model.regression:
        columns = [[number_text(v).decode()] for v in model.predict(X).tolist()]
    else:
        columns = [[str(c), *(number_text(p).decode() for p in ps)]
                   for c, ps in zip(model.predict(X).tolist(), model.predict_proba(X).tolist())]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header + added)
    writer.writerows(row + extra for (_, row), extra in zip(rows, columns))
    return buffer.getvalue()


def write_file(path: str | Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` whole or not at all: through a temporary file beside it."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{path}: is a directory; expected a file name")
    if not path.parent.is_dir():
        raise BadInput(f"{path}: the directory {path.parent} does not exist")
    try:
        return write_atomic(path, [content])
    except OSError as e:
        raise BadInput(f"{path}: cannot write there ({e.strerror or e})") from None
