"""The TensorFlow Playground options in the reference engine: regression, L1, input feature transforms."""

import math

import numpy as np
import pytest

from conftest import same_history
import torch
import torch.nn.functional as F

from tests.conftest import assert_bad_input
from trainlab.config import config_from_dict, expand
from trainlab.data import make_dataset
from trainlab.errors import BadInput
from trainlab.models import build_model
from trainlab.population import unsupported
from trainlab.data import DataCache
from trainlab.runner import population_engine
from trainlab.train import train


def cfg(**sections):
    return config_from_dict(sections)


@pytest.mark.parametrize("name", ["plane", "gaussian"])
def test_regression_learns_the_target_with_mse(name):
    r = train(cfg(data={"name": name, "task": "regression", "n_samples": 400},
                  model={"hidden": [16], "activation": "tanh"}, optim={"name": "adam", "lr": 0.02},
                  train={"epochs": 80}))
    data = make_dataset(cfg(data={"name": name, "task": "regression", "n_samples": 400}).data)
    baseline = float(np.mean((data.y_val - data.y_train.mean()) ** 2))  # predicting the mean
    assert r.status == "ok"
    assert r.summary()["final_val_loss"] < 0.2 * baseline
    assert all(math.isnan(a) for a in r.history["val_acc"])  # no accuracy for a real-valued target


def test_regression_model_has_one_output_and_float_targets():
    data = make_dataset(cfg(data={"name": "plane", "task": "regression", "noise": 0.0}).data)
    assert data.n_classes == 1 and data.regression
    np.testing.assert_allclose(data.y_train, data.raw_train.sum(axis=1) / 2)


def test_regression_from_csv(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x1,x2,y\n" + "".join(f"{i / 10},{-i / 10},{i / 5}\n" for i in range(-10, 10)))
    data = make_dataset(cfg(data={"name": "csv", "path": str(path), "task": "regression"}).data)
    assert data.y_train.dtype == np.float64 and data.n_classes == 1


@pytest.mark.parametrize("data, message", [
    ({"name": "moons", "task": "regression"}, "needs data.name = one of plane, gaussian, csv"),
    ({"name": "plane"}, "set data.task = 'regression'"),
])
def test_task_and_data_must_fit(data, message):
    with pytest.raises(BadInput, match=message):
        cfg(data=data)


def test_l1_adds_its_subgradient_to_the_loss_gradient():
    """One full-batch SGD step with L1 equals a step on cross-entropy + l1·Σ|W| differentiated by autograd."""
    c = cfg(data={"n_samples": 100}, optim={"name": "sgd", "lr": 0.1, "l1": 0.05},
            train={"epochs": 1, "batch_size": 0, "dtype": "float64"})
    data = make_dataset(c.data)
    model = build_model(c.model, data.in_dim, data.n_classes, torch.Generator().manual_seed(0), torch.float64)
    X, y = torch.tensor(data.X_train), torch.tensor(data.y_train)
    weights = [model[0].weight, model[2].weight]
    loss = F.cross_entropy(model(X), y) + 0.05 * sum(w.abs().sum() for w in weights)
    loss.backward()
    with torch.no_grad():
        expected = {k: (p - 0.1 * p.grad).numpy() for k, p in model.named_parameters()}
    result = train(c, seed=0, data=data)
    for k, v in expected.items():
        np.testing.assert_allclose(result.params[k], v, rtol=0, atol=1e-12)


def test_l1_makes_weights_sparse():
    base = {"data": {"n_samples": 300}, "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": 60}}
    plain = train(cfg(**base))
    sparse = train(cfg(**{**base, "optim": {"name": "adam", "lr": 0.01, "l1": 0.01}}))
    small = lambda r: float(np.mean(np.abs(r.params["0.weight"]) < 0.02))  # noqa: E731
    assert small(sparse) > small(plain) + 0.3


def test_feature_transforms_make_circles_linearly_separable():
    c = cfg(data={"name": "circles", "noise": 0.05, "features": ["x1^2", "x2^2"]}, model={"hidden": []},
            optim={"name": "adam", "lr": 0.05}, train={"epochs": 60})
    linear = cfg(data={"name": "circles", "noise": 0.05}, model={"hidden": []},
                 optim={"name": "adam", "lr": 0.05}, train={"epochs": 60})
    assert train(c).summary()["final_val_acc"] > 0.97
    assert train(linear).summary()["final_val_acc"] < 0.7


def test_zero_init_leaves_hidden_units_identical():
    r = train(cfg(model={"init": "zeros", "hidden": [8]}, train={"epochs": 5}))
    w = r.params["0.weight"]
    assert np.all(w == w[0])  # symmetric start, symmetric gradients: the units never differ


def test_population_engine_falls_back_for_l1_and_regression():
    assert unsupported(cfg(optim={"l1": 0.01})) == "optim.l1 is not implemented by the population engine"
    assert "data.task" in unsupported(cfg(data={"name": "plane", "task": "regression"}))
    assert unsupported(cfg(data={"features": ["x1", "x2", "x1*x2", "sin(x1)"]})) is None

    sweep = cfg(seeds=2, data={"n_samples": 200, "features": ["x1", "x2", "x1^2"]}, optim={"l1": 0.001},
                grid={"optim.lr": [0.05, 0.1]}, train={"epochs": 5})
    specs = expand(sweep)
    results = [r for chunk in population_engine(specs, DataCache()) for r in chunk]
    for spec, r in zip(specs, results):  # the fallback is the reference engine itself: equal bit for bit
        assert same_history(r.history, train(spec.config, spec.seed).history)


def test_tools_built_for_classifiers_refuse_regression(cli, write_config):
    path = write_config('[data]\nname = "plane"\ntask = "regression"\n')
    assert_bad_input(cli("doctor", path), "regression")
    assert_bad_input(cli("lrfind", path), "regression")


def test_loss_curves_of_a_regression_say_mse(tmp_path):
    import trainlab as tl

    c = cfg(data={"name": "plane", "task": "regression", "n_samples": 200}, train={"epochs": 3}, seeds=2)
    assert tl.plot_history(train(c)).get_ylabel() == "MSE loss"
    results = tl.run(c, out=tmp_path / "out")
    [loss] = [fig for kind, fig in results.figures(c.experiment_name).items() if kind == "loss"]
    assert {ax.get_ylabel() for ax in loss.axes} >= {"MSE loss"}
