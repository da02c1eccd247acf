"""One registry per concept: every activation, optimizer and data set works everywhere it is named.

An activation added to activations.py and nowhere else, an optimizer added to config.OPTIMIZERS
without its two builders, or a data set without its generator fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
import torch
import torch.nn.functional as F

from trainlab import data
from trainlab.activations import ACTIVATIONS
from trainlab.backprop import Backprop, activations_of
from trainlab.config import DATASETS, OPTIMIZERS, REGRESSION_DATASETS, DataConfig, ModelConfig, OptimConfig
from trainlab.models import build_model, linear_layers
from trainlab.optim import TORCH_OPTIMIZERS, build_optimizer
from trainlab.population.net import Net, Workspace
from trainlab.population.optim import BATCHED_OPTIMIZERS, build_batched_optimizer

KERNEL_C = Path(__file__).parents[1] / "trainlab" / "population" / "kernel.c"


def test_the_config_accepts_exactly_the_registered_activations():
    for name in ACTIVATIONS:
        assert ModelConfig(hidden=[3, 3], activation=name).activations == [name, name]
    assert ModelConfig(hidden=[3, 3], activation=list(ACTIVATIONS)[:2]).activations == list(ACTIVATIONS)[:2]
    for unknown in ("swish", "ReLU", ["relu", "swish"]):
        with pytest.raises(ValidationError, match="unknown activation"):
            ModelConfig(hidden=[3, 3], activation=unknown)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_activation_builds_into_the_model_and_is_recognised_in_it(name):
    model = build_model(ModelConfig(hidden=[3, 3], activation=name), 2, 2)
    assert [type(m) for m in model][1] is type(ACTIVATIONS[name].module())
    assert activations_of(model) == [name, name]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_derivative_is_autograds(name):
    activation = ACTIVATIONS[name]
    z = torch.linspace(-4, 4, 81, dtype=torch.float64).requires_grad_()  # 0 included: the kinks' side
    a = activation.module()(z)
    (grad,) = torch.autograd.grad(a.sum(), z)
    z = z.detach()
    torch.testing.assert_close(activation.f(z), a.detach(), rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(activation.df(z, a.detach()), grad, rtol=1e-15, atol=1e-15)
    # the population engine's in-place pair: the same numbers
    out = torch.empty_like(z)
    applied = activation.apply_(z.clone(), out if activation.needs_input else None)
    assert torch.equal(applied, a.detach())
    upstream = torch.linspace(-1, 1, 81, dtype=torch.float64)
    in_place = activation.backward_(upstream.clone(), z if activation.needs_input else None, applied)
    assert torch.equal(in_place, torch.autograd.grad(activation.module()(z.requires_grad_()), z, upstream)[0])


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_hand_written_backprop_gives_autograds_gradients(name):
    g = torch.Generator().manual_seed(3)
    model = build_model(ModelConfig(hidden=[5, 4], activation=name), 3, 3, generator=g, dtype=torch.float64)
    X, y = torch.randn(9, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (9,), generator=g)
    F.cross_entropy(model(X), y).backward()
    params = {k: p.detach() for k, p in model.named_parameters()}
    _, grads = Backprop(name).loss_and_grads(params, X, y)
    for k, p in model.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden", [[6], [5, 4]])  # in → H → 2 trains batch-major, deeper nets feature-major
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_the_population_engines_batched_gradients_are_autograds(name, hidden):
    g = torch.Generator().manual_seed(4)
    k, m = 3, 7
    net = Net([2, *hidden, 2], name, torch.float64)
    models = [build_model(ModelConfig(hidden=hidden, activation=name), 2, 2, generator=g, dtype=torch.float64)
              for _ in range(k)]
    params, expected = torch.empty(k, net.n_params, dtype=torch.float64), torch.empty(k, net.n_params,
                                                                                      dtype=torch.float64)
    X, y = torch.randn(k, m, 2, generator=g, dtype=torch.float64), torch.randint(0, 2, (k, m), generator=g)
    for i, model in enumerate(models):
        F.cross_entropy(model(X[i]), y[i]).backward()
        for layer, linear in enumerate(linear_layers(model)):
            net.load(params, i, layer, linear.weight.detach(), linear.bias.detach())
            net.load(expected, i, layer, linear.weight.grad, linear.bias.grad)
    xa = torch.cat([X, torch.ones(k, m, 1, dtype=torch.float64)], dim=2).transpose(1, 2)
    grad = torch.empty_like(params)
    net.gradients(params, xa, F.one_hot(y, 2).double().transpose(1, 2), Workspace(torch.float64), out=grad)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)


def test_the_c_kernel_numbers_the_activations_in_the_registrys_order():
    enum = re.search(r"enum\s*\{\s*(RELU\b[^}]*)\}", KERNEL_C.read_text())
    assert enum, "kernel.c: no `enum { RELU, ... }` of the activations"
    assert [name.strip() for name in enum.group(1).split(",")] == [a.c_enum for a in ACTIVATIONS.values()]


# ---------------------------------------------------------------------------- optimizers


def test_every_optimizer_of_the_config_has_both_engines_builders():
    assert OptimConfig.model_fields["name"].annotation.__args__ == OPTIMIZERS
    assert list(TORCH_OPTIMIZERS) == list(OPTIMIZERS)
    assert list(BATCHED_OPTIMIZERS) == list(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_takes_the_same_first_step_in_both_engines(name):
    cfg = OptimConfig(name=name, lr=0.1, weight_decay=0.01)
    start = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    grad = torch.tensor([[0.3, -0.1, 0.2]], dtype=torch.float64)
    param = torch.nn.Parameter(start[0].clone())
    optimizer = build_optimizer(cfg, [param])
    params = start.clone()
    batched = build_batched_optimizer([cfg], torch.zeros(1, dtype=torch.long), params)
    for _ in range(2):
        param.grad = grad[0].clone()
        optimizer.step()
        batched.step(params, grad.clone(), [cfg.lr])
    torch.testing.assert_close(params[0], param.detach(), rtol=1e-12, atol=1e-14)
    assert not torch.equal(params, start)


# ---------------------------------------------------------------------------- data sets


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "csv" and d not in data.FIXED])  # fixed: test_data.py
def test_each_data_set_of_the_config_is_generated(name):
    task = "regression" if name in REGRESSION_DATASETS and name != "gaussian" else "classification"
    X, y = data.generate(DataConfig(name=name, task=task, n_samples=40))
    assert X.shape == (40, 2) and len(y) == 40 and (X.std(axis=0) > 0).all()


def test_each_generated_data_set_is_in_the_config():
    generated = set(data.DEFAULT_NOISE) | set(data.DEFAULT_REGRESSION_NOISE)
    assert generated | set(data.FIXED) | {"csv"} == set(DATASETS)
