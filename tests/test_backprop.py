"""Hand-written backprop: the same gradients as autograd, and the manual engine trains like the reference."""

import csv

import pytest
import torch
import torch.nn.functional as F

from trainlab.activations import ACTIVATIONS
from trainlab.backprop import Backprop, activations_of, dropout_masks, manual_gradients
from trainlab.config import ModelConfig, config_from_dict
from trainlab.models import build_model, set_dropout_step
from trainlab.runner import run
from trainlab.train import train


def cfg(**sections):
    return config_from_dict(sections)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("hidden", [[], [5], [6, 4, 3]])
def test_forward_loss_and_gradients_equal_autograd(activation, hidden):
    g = torch.Generator().manual_seed(1)
    model = build_model(ModelConfig(hidden=hidden, activation=activation), 3, 4, generator=g, dtype=torch.float64)
    X = torch.randn(11, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (11,), generator=g)

    logits = model(X)
    loss = F.cross_entropy(logits, y)
    loss.backward()

    assert activations_of(model) == [activation] * len(hidden)
    params = {k: p.detach() for k, p in model.named_parameters()}
    bp = Backprop(activation)
    manual_logits, _, _ = bp.forward(params, X)
    manual_loss, grads = bp.loss_and_grads(params, X, y)
    torch.testing.assert_close(manual_logits, logits.detach(), rtol=0, atol=1e-13)
    assert abs(manual_loss.item() - loss.item()) < 1e-13
    assert list(grads) == [k for k, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        assert grads[name].shape == p.shape
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dropout", [0.0, [0.5, 0.0, 0.2]])
def test_an_activation_per_layer_and_dropout_masks_give_autograds_gradients(dropout):
    g = torch.Generator().manual_seed(2)
    activations = ["tanh", "relu", "gelu"]
    model = build_model(ModelConfig(hidden=[6, 5, 4], activation=activations, dropout=dropout), 3, 4, generator=g,
                        dtype=torch.float64)
    set_dropout_step(model, seed=4, epoch=2, step=1)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (30,), generator=g)
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    masks = dropout_masks(model, len(X))
    assert (masks is None) == (dropout == 0.0)
    bp = Backprop(activations_of(model), masks=masks)
    assert bp.activation == activations
    manual_loss, grads = bp.loss_and_grads({k: p.detach() for k, p in model.named_parameters()}, X, y)
    assert abs(manual_loss.item() - loss.item()) < 1e-13
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("outputs", [1, 3])
def test_mse_loss_and_gradients_equal_autograd(outputs):
    g = torch.Generator().manual_seed(2)
    model = build_model(ModelConfig(hidden=[5, 4], activation="tanh"), 3, outputs, generator=g, dtype=torch.float64)
    X = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.randn(9, outputs, generator=g, dtype=torch.float64).squeeze(1)  # one output: a vector, as trainlab's
    loss = F.mse_loss(model(X).reshape(y.shape), y)
    loss.backward()

    bp = Backprop("tanh", "mse")
    manual_loss, grads = bp.loss_and_grads(bp.parameters(model), X, y)
    assert abs(manual_loss.item() - loss.item()) < 1e-14
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("model", [{"hidden": [8], "activation": "tanh"},
                                   {"hidden": [8, 6], "activation": ["tanh", "relu"], "dropout": [0.2, 0.1]}])
def test_manual_engine_trains_a_regression_like_the_reference(model):
    c = cfg(data={"name": "plane", "task": "regression", "n_samples": 200}, model=model,
            optim={"name": "adam", "lr": 0.01}, train={"epochs": 10, "dtype": "float64"})
    ref, manual = train(c, seed=1), train(c, seed=1, gradients=manual_gradients)
    assert max(abs(a - b) for a, b in zip(ref.history["train_loss"], manual.history["train_loss"])) <= 1e-12
    assert ref.history["train_loss"][-1] < ref.history["train_loss"][0] / 2


def test_manual_gradients_fill_grad_like_backward():
    model = build_model(ModelConfig(hidden=[4]), 2, 2, generator=torch.Generator().manual_seed(0))
    X, y = torch.randn(8, 2), torch.tensor([0, 1] * 4)
    loss = manual_gradients(model, X, y)
    assert loss.item() == pytest.approx(F.cross_entropy(model(X), y).item(), rel=1e-6)
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


ENGINE_CASES = {
    "logreg-sgd": dict(model={"hidden": []}, optim={"name": "sgd", "lr": 0.1}),
    "relu-adam": dict(model={"hidden": [16]}, optim={"name": "adam", "lr": 0.01}),
    "tanh3-momentum": dict(model={"hidden": [8, 8, 8], "activation": "tanh"}, optim={"name": "momentum", "lr": 0.05}),
    "sigmoid2-rmsprop": dict(model={"hidden": [12, 6], "activation": "sigmoid"}, optim={"name": "rmsprop", "lr": 0.005}),
    "gelu-nesterov-step": dict(
        model={"hidden": [10, 10], "activation": "gelu", "init": "he"},
        optim={"name": "nesterov", "lr": 0.05, "schedule": {"name": "step", "step_size": 5, "gamma": 0.5}},
    ),
    "leaky4-adamw-fullbatch": dict(
        model={"hidden": [8, 8, 8, 8], "activation": "leaky_relu", "init": "xavier"},
        optim={"name": "adamw", "lr": 0.01},
        train={"batch_size": 0},
    ),
    "identity-sgd-wd": dict(model={"hidden": [4], "activation": "identity"}, optim={"lr": 0.1, "weight_decay": 1e-3}),
    "per-layer-dropout-adam": dict(model={"hidden": [12, 8], "activation": ["gelu", "tanh"], "dropout": [0.3, 0.1]},
                                   optim={"name": "adam", "lr": 0.01}),
}


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_manual_engine_agrees_with_autograd_to_1e_8_in_float64(case):
    sections = ENGINE_CASES[case]
    train_cfg = {"epochs": 20, "dtype": "float64", **sections.get("train", {})}
    c = cfg(data={"name": "moons", "n_samples": 300, "noise": 0.25}, **{**sections, "train": train_cfg})
    ref = train(c, seed=3)
    manual = train(c, seed=3, gradients=manual_gradients)
    assert manual.status == ref.status and manual.epochs_run == ref.epochs_run == 20
    for column in ("train_loss", "val_loss", "grad_norm"):
        diff = max(abs(a - b) for a, b in zip(ref.history[column], manual.history[column]))
        assert diff <= 1e-8, (column, diff)
    assert ref.history["train_loss"][-1] < ref.history["train_loss"][0]  # it did train


def test_manual_engine_early_stops_and_diverges_like_the_reference():
    stopping = cfg(
        data={"n_samples": 200, "noise": 0.4},
        model={"hidden": [64, 64]},
        optim={"name": "adam", "lr": 0.02},
        train={"epochs": 200, "batch_size": 16, "dtype": "float64", "early_stopping": {"patience": 5}},
    )
    ref, manual = train(stopping), train(stopping, gradients=manual_gradients)
    assert ref.status == manual.status == "early_stopped"
    assert (ref.epochs_run, ref.best_epoch) == (manual.epochs_run, manual.best_epoch)

    diverging = cfg(optim={"lr": 1e6}, model={"init": "large"}, train={"epochs": 30, "dtype": "float64"})
    ref, manual = train(diverging), train(diverging, gradients=manual_gradients)
    assert ref.status == manual.status == "diverged"
    assert ref.epochs_run == manual.epochs_run


def test_trainlab_run_engine_manual(cli, write_config, tmp_path):
    config = write_config(
        'name = "m"\nseeds = 2\n[data]\nn_samples = 200\n[model]\nhidden = [8]\nactivation = "tanh"\n'
        '[train]\nepochs = 5\ndtype = "float64"\n'
    )
    result = cli("run", config, "--engine", "manual", "--out", tmp_path / "manual")
    assert result.code == 0, result.err
    run(config_from_dict({"name": "m", "seeds": 2, "data": {"n_samples": 200},
                          "model": {"hidden": [8], "activation": "tanh"},
                          "train": {"epochs": 5, "dtype": "float64"}}),
        engine="reference", out=tmp_path / "ref", plots=False)
    rows = {}
    for name in ("manual", "ref"):
        with open(tmp_path / name / "history.csv") as f:
            rows[name] = list(csv.DictReader(f))
    assert len(rows["manual"]) == len(rows["ref"]) == 10
    for a, b in zip(rows["manual"], rows["ref"]):
        assert (a["run_id"], a["epoch"]) == (b["run_id"], b["epoch"])
        assert abs(float(a["train_loss"]) - float(b["train_loss"])) <= 1e-8
