"""Models you keep and use: tl.load_model, Model.save/load (safetensors), trainlab predict and export-model."""

import csv
import io
import json
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import torch

from conftest import SUBPROCESS_ENV, assert_bad_input

import trainlab as tl
from trainlab.config import config_from_dict, with_values
from trainlab.data import write_csv
from trainlab.findings import focus

FEATURES = ["x1", "x2", "x1^2", "sin(x2)"]
# Classification on transformed features with a test split; two settings × two seeds (the population engine).
CLASSIFIER = {"name": "clf", "seeds": 2,
              "data": {"n_samples": 240, "features": FEATURES, "split": [0.6, 0.2, 0.2]},
              "model": {"hidden": [16]}, "optim": {"name": "adam", "lr": 0.02}, "train": {"epochs": 15},
              "grid": {"model.activation": ["tanh", "relu"]}}
# The same with early stopping: each run keeps the weights of its best epoch, and its final metrics are that epoch's.
STOPPED = {**CLASSIFIER, "name": "stopped",
           "train": {"epochs": 40, "early_stopping": {"patience": 3, "min_delta": 0.01}}}
REGRESSOR = {"name": "reg", "data": {"name": "plane", "task": "regression", "n_samples": 200},
             "model": {"hidden": [8]}, "optim": {"name": "adam", "lr": 0.02}, "train": {"epochs": 30}}


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "clf"
    results = tl.run(config_from_dict(CLASSIFIER), out=out, plots=False)
    return out, results.runs()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "stopped"
    results = tl.run(config_from_dict(STOPPED), out=out, plots=False)
    return out, results.runs()


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "reg"
    results = tl.run(config_from_dict(REGRESSOR), out=out, plots=False)
    return out, results.runs()


def run_data(run):
    """The data set a stored run of CLASSIFIER or STOPPED trained on, made afresh from its config."""
    return tl.make_dataset(with_values(config_from_dict(CLASSIFIER), run["grid"], "test").data)


@pytest.mark.parametrize("stored", ["clf", "stopped"])
def test_a_saved_model_predicts_in_a_fresh_process_exactly_what_the_run_scored(stored, request, tmp_path):
    out, runs = request.getfixturevalue(stored)
    if stored == "stopped":
        assert {r["status"] for r in runs} == {"early_stopped"}
    files, points = {}, {}
    for i, r in enumerate(runs):
        files[r["run_id"]] = str(tl.load_model(out, r["run_id"]).save(tmp_path / f"m{i}.safetensors"))
        data = run_data(r)
        points[r["run_id"]] = {"val": data.raw_val.tolist(), "test": data.raw_test.tolist()}
    (tmp_path / "points.json").write_text(json.dumps({"files": files, "points": points}))
    script = """
import json, sys
import trainlab as tl
job = json.load(open(sys.argv[1]))
print(json.dumps({run: {split: tl.Model.load(job["files"][run]).predict(X).tolist() for split, X in splits.items()}
                  for run, splits in job["points"].items()}))
"""
    p = subprocess.run([sys.executable, "-c", script, str(tmp_path / "points.json")], capture_output=True, text=True,
                       env=SUBPROCESS_ENV, timeout=120)
    assert p.returncode == 0, p.stderr
    predicted = json.loads(p.stdout)
    for r in runs:
        data = run_data(r)
        assert np.mean(np.array(predicted[r["run_id"]]["val"]) == data.y_val) == r["final_val_acc"]
        assert np.mean(np.array(predicted[r["run_id"]]["test"]) == data.y_test) == r["test_acc"]


def test_the_model_applies_the_runs_feature_transforms_and_train_scaler(clf):
    out, runs = clf
    r = runs[0]
    model = tl.load_model(out, r["run_id"])
    data = run_data(r)
    assert model.columns == ["x1", "x2"] and model.features == FEATURES
    assert model.network[0].in_features == len(FEATURES)
    # raw points in == the network on the data set's own transformed, scaled inputs
    logits = model.network(torch.tensor(data.X_val, dtype=torch.float32))
    assert np.array_equal(model.predict(data.raw_val), logits.argmax(dim=1).numpy())
    assert np.array_equal(model.predict(data.raw_val.tolist()), model.predict(data.raw_val))  # rows as lists
    assert model.score(data.raw_val, data.y_val) == r["final_val_acc"]
    proba = model.predict_proba(data.raw_val)
    assert proba.shape == (len(data.y_val), 2) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(proba.argmax(axis=1), model.predict(data.raw_val))


def test_the_model_file_is_safetensors_with_the_weights_config_and_scaler(clf, tmp_path):
    from safetensors import safe_open

    out, runs = clf
    r = runs[-1]
    path = tl.load_model(out, r["run_id"]).save(tmp_path / "model.safetensors")
    with safe_open(path, framework="np") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    stored = tl.Results(out).params(r["run_id"])
    assert set(tensors) == {"0.weight", "0.bias", "2.weight", "2.bias"} == set(stored)
    assert all(np.array_equal(tensors[k], stored[k]) and tensors[k].dtype == stored[k].dtype for k in stored)
    assert tensors["0.weight"].shape == (16, len(FEATURES))
    config = config_from_dict(tomllib.loads(metadata["config"]))
    assert config.model.activation == r["grid"]["model.activation"] and config.seed_list == [r["seed"]]
    inputs = json.loads(metadata["inputs"])
    prepare = run_data(r).prepare
    assert inputs["columns"] == ["x1", "x2"] and inputs["features"] == FEATURES and inputs["scale"] == "standard"
    assert np.array_equal(inputs["mean_"], prepare.a) and np.array_equal(inputs["scale_"], prepare.b)
    assert metadata["run_id"] == r["run_id"]


def test_save_writes_the_networks_weights_as_they_are_now(clf, tmp_path):
    """A PyTorch user may go on training ``model.network``: what is saved is what it predicts."""
    model = tl.load_model(clf[0], best=True)
    with torch.no_grad():
        model.network[-1].weight.zero_()
        model.network[-1].bias.copy_(torch.tensor([1.0, 0.0]))  # class 0, whatever the point
    points = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))
    assert (model.predict(points) == 0).all()
    loaded = tl.Model.load(model.save(tmp_path / "tuned.safetensors"))
    assert np.array_equal(loaded.predict_proba(points), model.predict_proba(points))


def test_regression_model_predicts_values_and_scores_r2(reg, tmp_path):
    from sklearn.metrics import r2_score

    out, runs = reg
    r = runs[0]
    model = tl.Model.load(tl.load_model(out, r["run_id"]).save(tmp_path / "reg.safetensors"))
    data = tl.make_dataset(config_from_dict(REGRESSOR).data)
    predicted = model.predict(data.raw_val)
    assert predicted.dtype == np.float64 and predicted.shape == data.y_val.shape
    assert np.mean((predicted - data.y_val) ** 2) == pytest.approx(r["final_val_loss"], rel=1e-5)
    assert model.score(data.raw_val, data.y_val) == r2_score(data.y_val, predicted) > 0.5
    assert model.classes is None
    with pytest.raises(tl.BadInput, match="regression"):
        model.predict_proba(data.raw_val)


def test_best_is_the_run_the_findings_rank_first(clf):
    out, runs = clf
    metric = focus("clf")
    assert metric == "final_val_loss"
    best = min(runs, key=lambda r: r[metric])
    assert tl.load_model(out, best=True).run_id == best["run_id"]


def test_best_in_a_directory_of_several_experiments_needs_the_experiment(tmp_path):
    two = [config_from_dict({**REGRESSOR, "train": {"epochs": 2}}),
           config_from_dict({"name": "other", "seeds": 2, "data": {"n_samples": 100}, "train": {"epochs": 2}})]
    results = tl.run(two, out=tmp_path / "o", plots=False)
    with pytest.raises(tl.BadInput, match=r"2 experiments \(reg, other\).*--experiment"):
        tl.load_model(tmp_path / "o", best=True)
    other = [r for r in results.runs() if r["experiment"] == "other"]
    assert tl.load_model(tmp_path / "o", best=True, experiment="other").run_id == \
        min(other, key=lambda r: r["final_val_loss"])["run_id"]


def test_bad_points_are_bad_input_naming_the_columns(clf):
    model = tl.load_model(clf[0], best=True)
    for X, fragment in [(np.zeros((3, 3)), "X has shape (3, 3); expected rows × 2 columns (x1, x2)"),
                        ([0.1, 0.2], "one point is a list of one row"),
                        ([[0.1, float("nan")]], "NaN or infinite values (row 0)"),
                        ([["a", "b"]], "expected numbers")]:
        with pytest.raises(tl.BadInput) as e:
            model.predict(X)
        assert fragment in str(e.value)
    with pytest.raises(tl.BadInput, match="one target per row"):
        model.score(np.zeros((3, 2)), [0, 1])


def test_a_run_on_csv_data_that_changed_since_is_refused(tmp_path):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=100, noise=0.2, random_state=0)
    write_csv(tmp_path / "points.csv", X, y)
    cfg = config_from_dict({"name": "csvrun", "data": {"name": "csv", "path": str(tmp_path / "points.csv")},
                            "train": {"epochs": 2}})
    tl.run(cfg, out=tmp_path / "o", plots=False)
    assert tl.load_model(tmp_path / "o", best=True).score(X, y) > 0
    write_csv(tmp_path / "points.csv", X * 2, y)
    with pytest.raises(tl.BadInput, match="points.csv changed"):
        tl.load_model(tmp_path / "o", best=True)


def test_a_run_on_arrays_needs_the_same_arrays(tmp_path):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=100, noise=0.2, random_state=0)
    cfg = config_from_dict({"name": "given", "train": {"epochs": 2}})
    results = tl.run(cfg, data=(X, y), out=tmp_path / "o", plots=False)
    with pytest.raises(tl.BadInput, match="data=\\(X, y\\)"):
        tl.load_model(tmp_path / "o", best=True)
    model = tl.load_model(tmp_path / "o", best=True, data=(X, y))
    data = results.data_for(results.config("given"))
    assert model.score(data.raw_val, data.y_val) == results.runs()[0]["final_val_acc"]


# ---------------------------------------------------------------------------- the CLI


def read_table(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_cli_predict_and_export_model(clf, cli, tmp_path):
    out, runs = clf
    r = runs[1]
    points = tmp_path / "points.csv"
    data = run_data(r)
    write_csv(points, data.raw_val, data.y_val)  # columns x1, x2, y: the label is kept, not used

    shown = cli("predict", out, "--run", r["run_id"], "--input", points)
    assert shown.code == 0, shown.err
    rows = read_table(shown.out)
    assert list(rows[0]) == ["x1", "x2", "y", "pred", "p_0", "p_1"] and len(rows) == len(data.y_val)
    predicted = np.array([int(row["pred"]) for row in rows])
    assert np.mean(predicted == data.y_val) == r["final_val_acc"]
    assert all(abs(float(row["p_0"]) + float(row["p_1"]) - 1) < 1e-12 for row in rows)

    model_file = tmp_path / "model.safetensors"
    exported = cli("export-model", out, "--run", r["run_id"], "--out", model_file)
    assert exported.code == 0, exported.err
    preds = tmp_path / "preds.csv"
    from_file = cli("predict", model_file, "--input", points, "--out", preds)
    assert from_file.code == 0, from_file.err
    assert preds.read_text() == shown.out

    best = tl.load_model(out, best=True)
    assert cli("export-model", out, "--best", "--out", model_file).code == 0
    assert tl.Model.load(model_file).run_id == best.run_id
    by_best = read_table(cli("predict", out, "--best", "--input", points).out)
    assert [int(row["pred"]) for row in by_best] == best.predict(data.raw_val).tolist()


def test_list_mentions_predict_and_export_model(cli):
    r = cli("list")
    assert r.code == 0 and "trainlab predict DIR --run RUN_ID" in r.out and "trainlab export-model" in r.out


def test_cli_predict_regression_writes_values(reg, cli, tmp_path):
    out, runs = reg
    points = tmp_path / "points.csv"
    points.write_text("x2,id,x1\n0.5,a,0.5\n-0.5,b,-0.5\n")  # any column order, extra columns kept
    r = cli("predict", out, "--run", runs[0]["run_id"], "--input", points)
    assert r.code == 0, r.err
    rows = read_table(r.out)
    assert list(rows[0]) == ["x2", "id", "x1", "pred"]
    model = tl.load_model(out, runs[0]["run_id"])
    assert [float(row["pred"]) for row in rows] == model.predict([[0.5, 0.5], [-0.5, -0.5]]).tolist()


@pytest.mark.parametrize("case", ["unknown run", "missing column", "not a trainlab dir", "not safetensors",
                                  "out below a file", "out is a directory", "no run chosen", "run with a file",
                                  "bad cell"])
def test_cli_bad_input_is_one_line_and_writes_nothing(clf, cli, tmp_path, case):
    out, runs = clf
    points = tmp_path / "points.csv"
    points.write_text("x1,x2\n0.1,0.2\n")
    result_file = tmp_path / "preds.csv"
    predict = ["predict", out, "--run", runs[0]["run_id"], "--input", points, "--out", result_file]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    args, fragments = {
        "unknown run": (["predict", out, "--run", "clf/seed=9", "--input", points, "--out", result_file],
                        ["no run 'clf/seed=9'", runs[0]["run_id"]]),
        "missing column": (predict[:-4] + ["--input", tmp_path / "other.csv", "--out", result_file],
                           ["no column 'x1', 'x2'", "inputs are x1, x2"]),
        "not a trainlab dir": (["predict", tmp_path / "empty", "--best", "--input", points],
                               ["no runs.sqlite here"]),
        "not safetensors": (["predict", tmp_path / "notes.txt", "--input", points], ["not a safetensors model file"]),
        "out below a file": (predict[:-1] + [tmp_path / "notes.txt" / "preds.csv"], ["does not exist"]),
        "out is a directory": (["export-model", out, "--best", "--out", tmp_path / "empty"], ["is a directory"]),
        "no run chosen": (["export-model", out, "--out", tmp_path / "m.safetensors"], ["--run RUN_ID or --best"]),
        "run with a file": (["predict", tmp_path / "notes.txt", "--run", "x", "--input", points], ["model file"]),
        "bad cell": (predict, ["row 4, column 'x1'", "not a number"]),  # the file's line, blank lines counted
    }[case]
    if case == "bad cell":
        points.write_text("x1,x2\n0.1,0.2\n\nabc,0.2\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_bad_input(cli(*args), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_model_with_dropout_predicts_without_it_even_after_network_train(tmp_path):
    cfg = config_from_dict({"name": "drop", "data": {"n_samples": 200}, "model": {"hidden": [32], "dropout": 0.5},
                            "train": {"epochs": 3}})
    out = tmp_path / "drop"
    tl.run(cfg, out=out, plots=False)
    model = tl.load_model(out, best=True)
    X = tl.make_dataset(cfg.data).raw_val
    expected = model.predict_proba(X)
    model.network.train()  # as a user fine-tuning it would
    np.testing.assert_array_equal(model.predict_proba(X), expected)
    assert model.network.training  # the user's mode is left as it was


@pytest.mark.parametrize("names", [("cat", "dog"), ("1", "2")])
def test_a_csv_models_predictions_are_the_csvs_own_labels(tmp_path, cli, names):
    """Labels that are not 0..k-1 (words, or 1 and 2) come back as the CSV wrote them, in
    predict, score, predict_proba's column order, the model file and `trainlab predict`."""
    data = tl.make_dataset(config_from_dict({"name": "m", "data": {"n_samples": 300, "scale": "none"}}).data)
    X, y = data.raw_train, data.y_train
    path = tmp_path / "animals.csv"
    path.write_text("x1,x2,kind\n" + "".join(f"{a},{b},{names[c]}\n" for (a, b), c in zip(X.tolist(), y.tolist())))
    cfg = config_from_dict({"name": "animals", "data": {"name": "csv", "path": str(path), "target": "kind"},
                            "model": {"hidden": [16]}, "optim": {"name": "adam", "lr": 0.02}, "train": {"epochs": 40}})
    out = tmp_path / "out"
    tl.run(cfg, out=out, plots=False)
    model = tl.load_model(out, best=True)
    labels = [int(n) for n in names] if names[0].isdigit() else list(names)
    assert model.classes.tolist() == labels
    truth = np.array([labels[c] for c in y])
    assert set(model.predict(X).tolist()) <= set(labels)
    assert model.score(X, truth) > 0.8  # scored against the CSV's own labels
    np.testing.assert_array_equal(np.array(labels)[model.predict_proba(X).argmax(axis=1)], model.predict(X))
    again = tl.Model.load(model.save(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))

    result = cli("predict", str(out), "--best", "--input", str(path))
    assert result.code == 0, result.err
    rows = read_table(result.out)
    assert set(rows[0]) >= {"pred", f"p_{names[0]}", f"p_{names[1]}"}
    assert np.mean([r["pred"] == r["kind"] for r in rows]) > 0.8


def test_boolean_targets_given_as_arrays_are_the_classes_0_and_1(tmp_path):
    data = tl.make_dataset(config_from_dict({"name": "b", "data": {"n_samples": 200, "scale": "none"}}).data)
    X, y = data.raw_train, data.y_train.astype(bool)
    out = tmp_path / "b"
    tl.run(config_from_dict({"name": "b", "model": {"hidden": [8]}, "train": {"epochs": 20}}), out=out,
           data=(X, y), plots=False)
    model = tl.load_model(out, best=True, data=(X, y))
    assert model.classes.tolist() == [0, 1]
    assert model.score(X, y) > 0.75  # booleans score against the predicted 0 and 1 (it raised before)
