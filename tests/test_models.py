"""Models: building and initialising the MLPs both engines train."""

import pytest
import torch

from trainlab.activations import activation_of_layer
from trainlab.config import config_from_dict
from trainlab.data import make_dataset
from trainlab.models import build_model, linear_layers, model_from_params, set_dropout_step
from trainlab.train import evaluate, train


def cfg(**sections):
    return config_from_dict(sections)


def test_inits():
    c = cfg(model={"hidden": [64, 64], "init": "he"})
    w = build_model(c.model, 2, 2, torch.Generator().manual_seed(0))[2].weight
    assert w.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)
    for name, std in (("small", 1e-3), ("large", 1.0)):
        w = build_model(cfg(model={"hidden": [64, 64], "init": name}).model, 2, 2,
                        torch.Generator().manual_seed(0))[2].weight
        assert w.std().item() == pytest.approx(std, rel=0.1)
    zero = build_model(cfg(model={"init": "zeros"}).model, 2, 2)
    assert all((p == 0).all() for p in zero.parameters())


def test_default_init_matches_nn_linear_distribution():
    c = cfg(model={"hidden": [256]})
    w = build_model(c.model, 100, 2, torch.Generator().manual_seed(0))[0].weight
    bound = 1 / 100**0.5
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.95 * bound


def test_each_hidden_layer_computes_its_own_activation():
    c = cfg(model={"hidden": [5, 4, 3], "activation": ["tanh", "relu", "sigmoid"]})
    model = build_model(c.model, 2, 2, torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.randn(20, 2, dtype=torch.float64)
    w = [layer.weight for layer in linear_layers(model)]
    b = [layer.bias for layer in linear_layers(model)]
    a1 = torch.tanh(x @ w[0].T + b[0])
    a2 = torch.clamp(a1 @ w[1].T + b[1], min=0)
    a3 = torch.sigmoid(a2 @ w[2].T + b[2])
    torch.testing.assert_close(model(x), a3 @ w[3].T + b[3], rtol=1e-12, atol=1e-12)
    assert [activation_of_layer(m) for m in model][1::2] == ["tanh", "relu", "sigmoid"]


def test_dropout_drops_and_rescales_while_training_and_is_off_at_evaluation():
    rate = 0.25
    c = cfg(model={"hidden": [400], "activation": "identity", "dropout": rate})
    model = build_model(c.model, 2, 2, torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.randn(300, 2, dtype=torch.float64)
    hidden = model[:2]  # Linear, then identity + dropout
    plain = model[0](x)
    set_dropout_step(model, seed=1, epoch=1, step=0)
    model.train()
    out = hidden(x)
    dropped = out == 0
    assert abs(dropped.double().mean().item() - rate) < 0.01  # of 120,000 units and points
    torch.testing.assert_close(out[~dropped], plain[~dropped] / (1 - rate), rtol=1e-15, atol=0)
    assert torch.equal(hidden(x), out)  # a pure function of (seed, epoch, step, layer, unit, point)
    set_dropout_step(model, seed=1, epoch=1, step=1)
    assert not torch.equal(hidden(x), out)  # each step its own mask
    model.eval()
    assert torch.equal(hidden(x), plain) and torch.equal(model(x), model(x))


def test_a_model_rebuilt_from_its_params_keeps_its_layers_and_predicts_the_same():
    c = cfg(model={"hidden": [6, 5], "activation": ["gelu", "tanh"], "dropout": [0.3, 0.1]},
            train={"epochs": 3, "dtype": "float64"})
    result = train(c, seed=2)
    rebuilt = model_from_params(c.model, result.params)
    assert [type(m[0]).__name__ for m in (rebuilt[1], rebuilt[3])] == ["GELU", "Tanh"]
    data = make_dataset(c.data)
    X, y = torch.tensor(data.X_val), torch.tensor(data.y_val)
    val_loss, _ = evaluate(rebuilt, X, y)
    assert val_loss == pytest.approx(result.history["val_loss"][-1], rel=1e-12)
