"""The metrics of a finished run on its val and test splits, beyond its loss and accuracy.

Classification: the confusion matrix (``confusion[i][j]`` counts points of class i predicted as j),
per-class precision, recall, F1 and support, macro F1 (over the classes in the labels or the
predictions) and accuracy; regression: RMSE, MAE and R². All as scikit-learn's functions give them
(``zero_division=0``), which tests/test_metrics.py checks, but for many models in one numpy pass:
scikit-learn's input checks, model by model, would cost a sweep more than its training.
``of_predictions`` gives a run's metrics as plain data (JSON in the run store); ``SUMMARY_METRICS``
are the ones runs.csv has a column for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SPLITS = ("val", "test")
# runs.csv columns, by task: split_metric for each split of SPLITS.
TASK_METRICS = {"classification": ("macro_f1",), "regression": ("rmse", "mae", "r2")}
SUMMARY_METRICS = tuple(f"{split}_{m}" for ms in TASK_METRICS.values() for split in SPLITS for m in ms)
METRIC_NAMES = {"macro_f1": "macro F1", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}

# A run's metrics: {"val": {...}, "test": {...}} (test only with a test split), each split's dict
# holding the keys of ``classification`` or ``regression``.
RunMetrics = dict[str, dict[str, Any]]


def confusion_matrices(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, C, C) counts: ``[k, i, j]`` points of class i that model k predicts as class j.

    ``predicted`` is (K, N) class indices (or (N,) for one model, giving (C, C)).
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    single = predicted.ndim == 1
    predicted = np.atleast_2d(predicted)
    k = len(predicted)
    cell = (np.arange(k)[:, None] * n_classes + np.asarray(y, dtype=np.int64)) * n_classes + predicted
    counts = np.bincount(cell.ravel(), minlength=k * n_classes * n_classes).reshape(k, n_classes, n_classes)
    return counts[0] if single else counts


def row_normalized(confusion: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum: the fraction of class i predicted as j
    (a row of a class with no points is 0, as ``confusion_matrix(normalize="true")`` gives it)."""
    return _ratio(confusion, np.sum(confusion, axis=-1, keepdims=True))


def classification(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support, macro F1 and accuracy of (K, C, C) confusion
    matrices (or one (C, C)): arrays with a leading K axis when given one."""
    counts = np.asarray(confusion, dtype=np.int64)
    hits = np.diagonal(counts, axis1=-2, axis2=-1)
    support, predicted = counts.sum(axis=-1), counts.sum(axis=-2)
    f1 = _ratio(2 * hits, support + predicted)  # = 2PR / (P + R), 0 where both are 0
    seen = (support + predicted) > 0  # macro F1 averages the classes in the labels or the predictions
    return {
        "precision": _ratio(hits, predicted),
        "recall": _ratio(hits, support),
        "f1": f1,
        "support": support,
        "macro_f1": _ratio((f1 * seen).sum(axis=-1), seen.sum(axis=-1)),
        "accuracy": _ratio(hits.sum(axis=-1), support.sum(axis=-1)),
    }


def regression(y: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """RMSE, MAE and R² of (K, N) predictions (or (N,)) of targets ``y``. R² is 1 - SSE / SST, as
    ``sklearn.metrics.r2_score`` (with constant targets: 1 for a perfect fit, else 0)."""
    y = np.asarray(y, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - y
    with np.errstate(over="ignore", invalid="ignore"):
        sse = np.square(error).sum(axis=-1)
        sst = np.square(y - y.mean()).sum()
        r2 = 1 - sse / sst if sst > 0 else np.where(sse == 0, 1.0, 0.0)
        return {"rmse": np.sqrt(sse / len(y)), "mae": np.abs(error).mean(axis=-1), "r2": r2}


def of_predictions(task: str, n_classes: int, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[RunMetrics]:
    """Each model's metrics, from ``splits``: split name → (targets (N,), predictions (K, N)),
    predictions being class indices for classification and outputs for regression."""
    per_split = {}
    for split, (y, predicted) in splits.items():
        if task == "regression":
            per_split[split] = regression(y, predicted)
        else:
            confusion = confusion_matrices(y, predicted, n_classes)
            per_split[split] = {"confusion": confusion, **classification(confusion)}
    k = len(next(iter(splits.values()))[1])
    # plain numbers and lists for JSON: counts as ints, the rest as floats
    return [{split: {name: np.asarray(values[i]).tolist() for name, values in metrics.items()}
             for split, metrics in per_split.items()} for i in range(k)]


def summary(metrics: RunMetrics | None, task: str) -> dict[str, float | None]:
    """A run's values of ``SUMMARY_METRICS`` (None where they do not apply: the other task's
    metrics, a test split the data does not have, a run stored without metrics)."""
    out: dict[str, float | None] = dict.fromkeys(SUMMARY_METRICS)
    for split, values in (metrics or {}).items():
        for name in TASK_METRICS[task]:
            out[f"{split}_{name}"] = values[name]
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)
