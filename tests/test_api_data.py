"""tl.train and tl.run on data given in Python (arrays or a Dataset), and tl.train refusing a grid."""

import numpy as np
import pytest

from conftest import same_history

import trainlab as tl
from trainlab.config import config_from_dict

CFG = {"train": {"epochs": 3}, "data": {"split": [0.75, 0.25]}}


def moons():
    from sklearn.datasets import make_moons

    return make_moons(n_samples=200, noise=0.2, random_state=0)


def test_train_on_arrays_splits_and_scales_them_as_the_config_says():
    X, y = moons()
    cfg = config_from_dict(CFG)
    result = tl.train(cfg, data=(X, y))
    assert result.status == "ok" and len(result.history["train_loss"]) == 3
    same = tl.train(cfg, data=(X.tolist(), y.tolist()))  # lists as well as arrays
    assert same_history(same.history, result.history)


def test_train_on_a_dataset_and_on_its_arrays():
    cfg = config_from_dict(CFG)
    dataset = tl.make_dataset(cfg.data)
    assert same_history(tl.train(cfg, data=dataset).history, tl.train(cfg).history)


def test_run_on_arrays_stores_and_reports(tmp_path):
    X, y = moons()
    cfg = config_from_dict({**CFG, "name": "given", "seeds": 2, "grid": {"model.activation": ["relu", "tanh"]}})
    results = tl.run(cfg, data=(X, y), out=tmp_path / "o")
    runs = results.runs()
    assert len(runs) == 4 and {r["status"] for r in runs} == {"ok"}
    assert (tmp_path / "o" / "given-boundary.png").exists()
    # split as the config says: 150 training rows of the 200 given
    assert results.data_for(results.config("given")).X_train.shape == (150, 2)


@pytest.mark.parametrize("X, y, fragment", [
    (np.zeros(10), np.zeros(10), "X has shape (10,); expected rows × features"),
    (np.zeros((10, 2)), np.zeros(9), "y has shape (9,); expected one target per row of X, shape (10,)"),
    (np.array([[0.0, 1.0], [np.nan, 2.0]] * 5), np.arange(10) % 2, "X has NaN or infinite values (row 1)"),
    (np.zeros((10, 2)), np.linspace(0, 1, 10), 'not classes: for a real-valued target set data.task = "regression"'),
    ([["a", "b"]] * 10, np.arange(10) % 2, "X must be numbers"),
])
def test_bad_arrays_are_bad_input_naming_the_problem(X, y, fragment):
    with pytest.raises(tl.BadInput) as e:
        tl.train(config_from_dict(CFG), data=(X, y))
    assert fragment in str(e.value)


def test_regression_on_arrays():
    X = np.random.default_rng(0).uniform(-1, 1, size=(100, 3))
    cfg = config_from_dict({**CFG, "data": {"task": "regression", "name": "plane", "split": [0.8, 0.2]}})
    result = tl.train(cfg, data=(X, X.sum(axis=1)))
    assert result.status == "ok"


def test_train_refuses_a_grid_and_says_what_to_use():
    cfg = config_from_dict({**CFG, "name": "g", "grid": {"optim.name": ["sgd", "adam"]}})
    with pytest.raises(tl.BadInput, match=r"g: tl.train trains one setting, and this config has a grid over "
                                          r"optim.name: use tl.run\(cfg\) .* tl.train\(cfg.at\(\{'optim.name': 'sgd'\}\)\)"):
        tl.train(cfg)
    assert tl.train(cfg.at({"optim.name": "adam"})).status == "ok"


def test_data_that_is_not_a_pair():
    with pytest.raises(tl.BadInput, match="expected a Dataset or a pair"):
        tl.train(config_from_dict(CFG), data=np.zeros((10, 3)))
