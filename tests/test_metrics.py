"""Run metrics (confusion matrix, per-class precision/recall/F1, RMSE/MAE/R²) against scikit-learn's,
and where a run's metrics show up: RunResult.summary, runs.csv, the store and the report."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from trainlab import metrics
from trainlab.config import config_from_dict
from trainlab.data import make_dataset
from trainlab.runner import Results, run
from trainlab.train import train


def random_predictions(seed: int, classes: int, models: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    predicted = np.where(rng.random((models, n)) < 0.7, y, rng.integers(0, classes, (models, n)))
    predicted[0, predicted[0] == classes - 1] = 0  # a class never predicted: precision has nothing to divide by
    return y, predicted


@pytest.mark.parametrize("classes", [2, 3, 10])
def test_confusion_matrix_and_per_class_scores_equal_scikit_learns(classes):
    y, predicted = random_predictions(classes, classes, models=5, n=97)
    confusion = metrics.confusion_matrices(y, predicted, classes)
    scores = metrics.classification(confusion)
    for k, p in enumerate(predicted):
        labels = list(range(classes))
        assert np.array_equal(confusion[k], skm.confusion_matrix(y, p, labels=labels))
        np.testing.assert_allclose(metrics.row_normalized(confusion[k]),
                                   skm.confusion_matrix(y, p, labels=labels, normalize="true"))
        precision, recall, f1, support = skm.precision_recall_fscore_support(y, p, labels=labels, zero_division=0)
        np.testing.assert_allclose(scores["precision"][k], precision)
        np.testing.assert_allclose(scores["recall"][k], recall)
        np.testing.assert_allclose(scores["f1"][k], f1)
        assert np.array_equal(scores["support"][k], support)
        assert scores["macro_f1"][k] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
        assert scores["accuracy"][k] == pytest.approx(skm.accuracy_score(y, p))


def test_macro_f1_averages_the_classes_present_as_scikit_learn_does():
    y, p = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # class 2 of 3 appears nowhere
    scores = metrics.classification(metrics.confusion_matrices(y, p, 3))
    assert scores["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))


@pytest.mark.parametrize("constant", [False, True])
def test_regression_metrics_equal_scikit_learns(constant):
    rng = np.random.default_rng(0)
    y = np.full(50, 0.3) if constant else rng.normal(size=50)
    predicted = y + rng.normal(scale=0.3, size=(4, 50))
    predicted[0] = y  # a perfect fit
    scores = metrics.regression(y, predicted)
    for k, p in enumerate(predicted):
        assert scores["rmse"][k] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
        assert scores["mae"][k] == pytest.approx(skm.mean_absolute_error(y, p))
        assert scores["r2"][k] == pytest.approx(skm.r2_score(y, p))


def iris_config(**train):
    return config_from_dict({"name": "iris", "data": {"name": "iris", "split": [0.6, 0.2, 0.2]},
                             "model": {"hidden": [8]}, "optim": {"name": "adam", "lr": 0.01},
                             "train": {"epochs": 15, "batch_size": 16, **train}})


def test_a_runs_metrics_are_its_models_predictions_scored_by_scikit_learn():
    cfg = iris_config()
    result = train(cfg, seed=0)
    data = make_dataset(cfg.data)
    model = result.model()
    for split, X, y in (("val", data.X_val, data.y_val), ("test", data.X_test, data.y_test)):
        predicted = model(torch.tensor(X)).argmax(dim=1).numpy()
        scores = result.metrics[split]
        assert scores["confusion"] == skm.confusion_matrix(y, predicted, labels=[0, 1, 2]).tolist()
        assert scores["macro_f1"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    summary = result.summary()
    assert summary["val_macro_f1"] == result.metrics["val"]["macro_f1"]
    assert summary["test_macro_f1"] == result.metrics["test"]["macro_f1"]
    assert summary["val_rmse"] is None  # the other task's metrics do not apply
    assert result.metrics["test"]["accuracy"] == pytest.approx(result.test_acc)


def read_runs(out):
    with open(out / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_runs_csv_store_and_report_carry_the_classification_metrics(tmp_path):
    cfg = iris_config().model_copy(update={"seeds": 2})
    results = run(cfg, engine="population", out=tmp_path / "out")
    rows = read_runs(tmp_path / "out")
    assert {"val_macro_f1", "test_macro_f1"} <= set(rows[0]) and "val_rmse" not in rows[0]
    stored = Results(tmp_path / "out")
    for row in rows:
        run_metrics = stored.metrics(row["run_id"])
        assert float(row["test_macro_f1"]) == pytest.approx(run_metrics["test"]["macro_f1"])
        assert np.array(run_metrics["val"]["confusion"]).sum() == len(make_dataset(cfg.data).y_val)
    report = results.report.path.read_text()
    assert (tmp_path / "out" / "iris-confusion.png").stat().st_size > 0
    assert 'alt="iris confusion"' in report and "macro F1" in report


def test_regression_runs_have_rmse_mae_and_r2_and_no_confusion_figure(tmp_path):
    cfg = config_from_dict({"name": "plane", "seeds": 2, "data": {"name": "plane", "task": "regression",
                                                                   "n_samples": 200, "split": [0.6, 0.2, 0.2]},
                            "train": {"epochs": 5, "dtype": "float64"}})
    results = run(cfg, engine="reference", out=tmp_path / "out")
    rows = read_runs(tmp_path / "out")
    assert {"val_rmse", "val_mae", "val_r2", "test_rmse", "test_mae", "test_r2"} <= set(rows[0])
    assert "val_macro_f1" not in rows[0]
    for row in rows:  # the val MSE of the last epoch is the returned model's RMSE squared
        assert float(row["val_rmse"]) ** 2 == pytest.approx(float(row["final_val_loss"]), rel=1e-9)
        assert float(row["val_r2"]) < 1
    assert not (tmp_path / "out" / "plane-confusion.png").exists()
    assert "RMSE" in results.report.path.read_text()


def test_plot_confusion_colours_cells_by_the_fraction_of_their_true_class():
    import trainlab as tl

    result = train(iris_config(epochs=2), seed=0)
    ax = tl.plot_confusion(result, split="val")
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown, metrics.row_normalized(result.metrics["val"]["confusion"]))
    assert [t.get_text() for t in ax.texts] == [str(c) for row in result.metrics["val"]["confusion"] for c in row]
