"""The population engine's fast paths: hand-derived gradients, slices and worker processes, the
compact RunBatch results and how the store writes them."""

from __future__ import annotations

import math
import os
import shutil
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainlab.activations import ACTIVATIONS
from trainlab.config import ModelConfig, OptimConfig, config_from_dict, expand
from trainlab.data import DataCache
from trainlab.models import build_model, linear_layers, set_dropout_step
from trainlab.population import train_population
from trainlab.population.compiled import compiled
from trainlab.optim import build_optimizer
from trainlab.population.net import Net, Workspace, argmax_classes, augmented_t
from trainlab.population.optim import build_batched_optimizer


def stacked(net: Net, models) -> torch.Tensor:
    """The (K, P) parameter matrix of some nn.Sequential models."""
    params = torch.empty(len(models), net.n_params, dtype=net.dtype)
    for i, model in enumerate(models):
        for layer, lin in enumerate(linear_layers(model)):
            net.weight(params, layer)[i] = lin.weight.detach()
            net.bias(params, layer)[i, :, 0] = lin.bias.detach()
    return params


def c_kernel(net: Net):
    kernel = compiled(net)
    if kernel is None:
        pytest.skip("no C compiler: the population engine runs its torch code only")
    return kernel


def test_the_c_kernel_is_built_where_there_is_a_compiler(monkeypatch):
    net = Net([2, 8, 2], "relu", torch.float32)
    if shutil.which(os.environ.get("CC", "cc")):
        assert compiled(net) is not None  # else the tests below would pass on the torch code alone
    monkeypatch.setenv("TRAINLAB_KERNEL", "torch")
    assert compiled(net) is None


@pytest.mark.parametrize("code", ["torch", "c"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("hidden", [[], [8], [8, 6], [5, 4, 3], [70]])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_hand_derived_gradients_equal_autograd(activation, hidden, classes, code):
    torch.manual_seed(len(hidden) * 10 + classes)
    k, m = 4, 13 if hidden != [70] else 150  # [70]: rows wider than a block, minibatches of 3 blocks
    net = Net([2, *hidden, classes], activation, torch.float64)
    models = [build_model(ModelConfig(hidden=hidden, activation=activation), 2, classes, dtype=torch.float64)
              for _ in range(k)]
    params = stacked(net, models)
    X = torch.randn(k, m, 2, dtype=torch.float64)
    y = torch.randint(0, classes, (k, m))
    grad = torch.empty_like(params)
    if code == "c":  # each model's minibatch: its own rows of one shared table
        table = torch.cat([X, torch.ones(k, m, 1, dtype=torch.float64), F.one_hot(y, classes).double()], 2)
        rows = torch.arange(k * m).view(k, m).flip(1)
        norms = torch.full((k,), 0.5, dtype=torch.float64)
        for step in (0, 1):  # each model's gradient norm written at an epoch's first step, added at the next
            c_kernel(net).gradients(params, table.reshape(k * m, -1), rows, m, out=grad, step=step, norms=norms)
        torch.testing.assert_close(norms, 2 * torch.linalg.vector_norm(grad, dim=1), rtol=1e-14, atol=0)
    else:
        xa = torch.cat([X, torch.ones(k, m, 1, dtype=torch.float64)], dim=2).transpose(1, 2)
        onehot = F.one_hot(y, classes).double().transpose(1, 2)
        net.gradients(params, xa, onehot, Workspace(torch.float64), out=grad)

    torch.testing.assert_close(grad, autograd_gradients(net, models, X, y, params), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_kernels_adam_steps_are_torchs_fused_ones(name, dtype):
    torch.manual_seed(3)
    net = Net([2, 64, 3], "tanh", dtype)
    configs = [OptimConfig(name=name, lr=0.01),
               OptimConfig(name=name, lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)]
    which = torch.tensor([0, 1, 1])  # each model's config
    k, m = len(which), 20
    params = torch.randn(k, net.n_params, dtype=dtype) / 2
    table = torch.cat([torch.randn(m, 2, dtype=dtype), torch.ones(m, 1, dtype=dtype),
                       F.one_hot(torch.randint(0, 3, (m,)), 3).to(dtype)], 1)
    rows = torch.stack([torch.randperm(m) for _ in range(k)])
    models = [params[i].clone().requires_grad_() for i in range(k)]  # each model's row as one tensor
    optimizers = [build_optimizer(configs[c], [model]) for c, model in zip(which.tolist(), models)]
    optimizer, grad = build_batched_optimizer(configs, which, params), torch.empty_like(params)
    for _ in range(3):
        lrs = [c.lr for c in configs]
        c_kernel(net).gradients(params, table, rows, m, out=grad, adam=optimizer.kernel_steps(lrs, 1))
        for model, torch_optimizer, g in zip(models, optimizers, grad):
            model.grad = g.clone()  # the gradient at the weights before this step
            torch_optimizer.step()
    expected = torch.stack([model.detach() for model in models])
    # an ulp or so a step apart, where the compiler fuses a multiply and an add that torch rounds twice
    tolerance = {torch.float64: (1e-12, 1e-15), torch.float32: (1e-5, 1e-7)}[dtype]
    torch.testing.assert_close(params, expected, rtol=tolerance[0], atol=tolerance[1])


def test_an_epochs_adam_steps_in_one_kernel_call_equal_them_one_call_at_a_time():
    torch.manual_seed(4)
    net = Net([2, 16, 3], "relu", torch.float64, dropouts=[0.2])  # dropout: each step's masks by its number
    configs = [OptimConfig(name="adam", lr=0.05)]
    k, n, batch = 3, 50, 16  # four minibatches, the last of 2 points
    table = torch.cat([torch.randn(n, 2, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64),
                       F.one_hot(torch.randint(0, 3, (n,)), 3).double()], 1)
    order, seeds = torch.stack([torch.randperm(n) for _ in range(k)]), torch.arange(k)
    start = torch.randn(k, net.n_params, dtype=torch.float64) / 2
    trained = []
    for one_call in (True, False):
        params, grad, norms = start.clone(), torch.empty_like(start), torch.empty(k, dtype=torch.float64)
        optimizer = build_batched_optimizer(configs, torch.zeros(k, dtype=torch.long), params)
        for epoch in (1, 2):
            if one_call:
                adam = optimizer.kernel_steps([0.05], 4)
                c_kernel(net).gradients(params, table, order, batch, grad, seeds, epoch, 0, norms, adam)
            else:
                for step, first in enumerate(range(0, n, batch)):
                    rows = order[:, first : first + batch]
                    adam = optimizer.kernel_steps([0.05], 1)
                    c_kernel(net).gradients(params, table, rows, rows.shape[1], grad, seeds, epoch, step, norms, adam)
        trained.append((params, grad, norms, optimizer.state["exp_avg_sq"]))
    for one_call, one_at_a_time in zip(*trained):
        assert torch.equal(one_call, one_at_a_time)
    assert not torch.equal(trained[0][0], start)


@pytest.mark.parametrize("code", ["torch", "c"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("hidden, activations, dropouts", [
    ([70], ["tanh"], [0.3]),  # one hidden layer (batch-major in torch); rows wider than a block
    ([8, 6], ["gelu", "relu"], [0.5, 0.2]),
    ([5, 4, 3], ["relu", "sigmoid", "leaky_relu"], [0.0, 0.4, 0.1]),  # a layer without dropout among others
])
def test_gradients_with_dropout_and_an_activation_per_layer_equal_autograd(hidden, activations, dropouts, classes,
                                                                             code):
    """The step's masks drawn by the population engine (C or torch) are the reference model's, unit
    for unit and point for point: its gradients equal autograd's through the reference model's dropout."""
    torch.manual_seed(len(hidden) + classes)
    k, m, epoch, step = 3, 150, 4, 2
    seeds = torch.tensor([0, 11, 2**40 + 5])
    net = Net([2, *hidden, classes], activations, torch.float64, dropouts)
    cfg = ModelConfig(hidden=hidden, activation=activations, dropout=dropouts)
    models = [build_model(cfg, 2, classes, dtype=torch.float64) for _ in range(k)]
    for seed, model in zip(seeds.tolist(), models):
        set_dropout_step(model, seed, epoch, step)
    params = stacked(net, models)
    X = torch.randn(k, m, 2, dtype=torch.float64)
    y = torch.randint(0, classes, (k, m))
    grad = torch.empty_like(params)
    if code == "c":
        table = torch.cat([X, torch.ones(k, m, 1, dtype=torch.float64), F.one_hot(y, classes).double()], 2)
        c_kernel(net).gradients(params, table.reshape(k * m, -1), torch.arange(k * m).view(k, m), m, grad, seeds,
                                epoch, step)
    else:
        xa = torch.cat([X, torch.ones(k, m, 1, dtype=torch.float64)], dim=2).transpose(1, 2)
        onehot = F.one_hot(y, classes).double().transpose(1, 2)
        masks = net.dropout_masks(seeds.tolist(), epoch, step, m, batch_major=net.first_transposed)
        net.gradients(params, xa, onehot, Workspace(torch.float64), out=grad, masks=masks)
    expected = autograd_gradients(net, models, X, y, params)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)
    for model in models:  # and the masks matter: without them the gradients differ
        model.eval()
        model.zero_grad()
    assert not torch.allclose(autograd_gradients(net, models, X, y, params), expected, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("hidden", [[40], [16, 33]])  # float32 sums 16 rows at a time: widths past 16
@pytest.mark.parametrize("classes", [2, 3])
def test_float32_kernel_gradients_equal_autograd(hidden, classes):
    torch.manual_seed(classes)
    k, m = 3, 100
    net = Net([2, *hidden, classes], "relu", torch.float32)
    models = [build_model(ModelConfig(hidden=hidden), 2, classes) for _ in range(k)]
    params = stacked(net, models)
    X, y = torch.randn(k, m, 2), torch.randint(0, classes, (k, m))
    table = torch.cat([X, torch.ones(k, m, 1), F.one_hot(y, classes).float()], 2).reshape(k * m, -1)
    grad = torch.empty_like(params)
    c_kernel(net).gradients(params, table, torch.arange(k * m).view(k, m), m, out=grad)
    torch.testing.assert_close(grad, autograd_gradients(net, models, X, y, params), rtol=1e-5, atol=1e-6)


def autograd_gradients(net: Net, models: list, X, y, params):
    """Each model's gradient of its cross-entropy on (X[i], y[i]) by autograd, as rows like ``params``."""
    expected = torch.empty_like(params)
    for i, model in enumerate(models):
        F.cross_entropy(model(X[i]), y[i]).backward()
        for layer, lin in enumerate(linear_layers(model)):
            net.weight(expected, layer)[i] = lin.weight.grad
            net.bias(expected, layer)[i, :, 0] = lin.bias.grad
    return expected


def evaluate(code: str, net: Net, params, X, y, splits):
    if code == "c":
        return c_kernel(net).evaluate(params, augmented_t(X), y, splits)
    return net.evaluate(params, augmented_t(X), y, splits, Workspace(net.dtype), 1 << 10)


@pytest.mark.parametrize("code", ["torch", "c"])
@pytest.mark.parametrize("classes", [2, 3])
def test_evaluation_equals_the_reference_loss_and_accuracy(classes, code):
    torch.manual_seed(classes)
    net = Net([2, 7, classes], "tanh", torch.float64)
    models = [build_model(ModelConfig(hidden=[7], activation="tanh"), 2, classes, dtype=torch.float64)
              for _ in range(5)]
    X, y = torch.randn(150, 2, dtype=torch.float64), torch.randint(0, classes, (150,))
    results = evaluate(code, net, stacked(net, models), X, y, [130, 20])
    for i, model in enumerate(models):
        with torch.no_grad():
            logits = model(X)
        for (losses, accs), part in zip(results, (slice(0, 130), slice(130, 150))):
            assert losses[i].item() == pytest.approx(F.cross_entropy(logits[part], y[part]).item(), rel=1e-12)
            assert accs[i].item() == (logits[part].argmax(1) == y[part]).double().mean().item()


def test_argmax_over_classes_is_torchs_including_ties_and_nan():
    for classes in (2, 3, 5):
        x = torch.randn(6, classes, 40)
        x[0, 1, 3] = x[1, :, 4] = x[2, 0, 5] = math.nan
        x[3, :, 6] = 1.0  # a tie: the first class wins
        assert torch.equal(argmax_classes(x), x.argmax(dim=1))


@pytest.mark.parametrize("code", ["torch", "c"])
def test_evaluation_of_nan_and_tied_logits_is_torchs(code):
    net = Net([2, 3], "identity", torch.float64)  # logits = W x + b
    torch.manual_seed(0)
    params = torch.randn(4, net.n_params, dtype=torch.float64)
    params[1] = 0  # every class tied: the first wins
    net.weight(params, 0)[2, 1, 0] = math.nan  # class 1 NaN everywhere: NaN counts as the maximum
    net.bias(params, 0)[3, 2, 0] = math.nan
    X, y = torch.randn(70, 2, dtype=torch.float64), torch.randint(0, 3, (70,))
    [(losses, accs)] = evaluate(code, net, params, X, y, [70])
    for i in range(4):
        logits = X @ net.weight(params, 0)[i].T + net.bias(params, 0)[i, :, 0]
        assert accs[i].item() == (logits.argmax(1) == y).double().mean().item()
        expected = F.cross_entropy(logits, y).item()
        assert math.isnan(losses[i].item()) if math.isnan(expected) else losses[i].item() == pytest.approx(expected)
    assert math.isnan(losses[2].item()) and math.isnan(losses[3].item())


def sweep(seeds=6, **train):
    return config_from_dict({
        "seeds": seeds, "data": {"n_samples": 120},
        "optim": {"name": "adam", "lr": 0.05},
        "train": {"epochs": 6, "batch_size": 16, "dtype": "float64", **train},
        "grid": {"optim.lr": [0.05, 0.01], "model.activation": ["relu"]},
    })


def test_state_dict_is_build_models():
    net = Net([2, 4, 3, 2], "relu", torch.float32)
    model = build_model(ModelConfig(hidden=[4, 3]), 2, 2, generator=torch.Generator().manual_seed(1))
    row = stacked(net, [model])[0].numpy()
    got = net.state_dict(row)
    expected = {k: v.numpy() for k, v in model.state_dict().items()}
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def test_slices_and_worker_threads_give_the_same_results():
    cfg = sweep(early_stopping={"patience": 2})
    specs, data = expand(cfg), DataCache()(cfg)
    one = train_population(specs, data, slice_models=len(specs), workers=1)
    for slice_models, workers in [(1, 1), (5, 1), (5, 2), (3, 3)]:
        other = train_population(specs, data, slice_models=slice_models, workers=workers)
        np.testing.assert_allclose(other.history, one.history, rtol=1e-12, atol=1e-15)
        for name in ("status", "epochs_run", "best_epoch", "final_epoch"):
            assert np.array_equal(getattr(other, name), getattr(one, name))
    # the same slicing on more threads is the same computation: bit for bit
    a = train_population(specs, data, slice_models=4, workers=1)
    b = train_population(specs, data, slice_models=4, workers=2)
    assert np.array_equal(a.history, b.history, equal_nan=True) and np.array_equal(a.params, b.params)


def test_a_failing_slice_is_an_error_and_stops_the_others(monkeypatch):
    import trainlab.population.loop as loop

    cfg = sweep(seeds=4)
    calls = []
    real = loop.train_slice

    def fail_in_second(setup, specs, index, *args):
        calls.append(index[0].item())
        if index[0] != 0:
            raise ValueError("boom")
        real(setup, specs, index, *args)

    monkeypatch.setattr(loop, "train_slice", fail_in_second)
    with pytest.raises(ValueError, match="boom"):
        train_population(expand(cfg), DataCache()(cfg), slice_models=4, workers=2)
    assert sorted(calls) == [0, 4]


def test_torch_thread_count_is_restored():
    cfg = sweep(seeds=2)
    before = torch.get_num_threads()
    train_population(expand(cfg), DataCache()(cfg), workers=2)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("code", ["torch", "c"])
def test_two_class_evaluation_counts_ties_as_class_0_and_first_layer_layout_round_trips(code):
    net = Net([2, 5, 2], "relu", torch.float64)
    params = torch.zeros(3, net.n_params, dtype=torch.float64)  # every margin is exactly 0: class 0
    X, y = torch.randn(40, 2, dtype=torch.float64), torch.tensor([0, 0, 1, 0] * 10)  # class 0: 3 in 4
    (train_loss, train_acc), (val_loss, val_acc) = evaluate(code, net, params, X, y, [30, 10])
    assert torch.equal(train_acc, torch.full((3,), float((y[:30] == 0).sum()) / 30, dtype=torch.float64))
    assert torch.equal(val_acc, torch.full((3,), 0.7, dtype=torch.float64))
    torch.testing.assert_close(train_loss, torch.full((3,), math.log(2), dtype=torch.float64))
    # the first layer is stored as [W | b] transposed; weight/bias views and state_dict agree
    w, b = torch.randn(3, 5, 2, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    for i in range(3):
        net.load(params, i, 0, w[i], b[i])
    assert torch.equal(net.first_t(params)[:, :2], w.transpose(1, 2)) and torch.equal(net.first_t(params)[:, 2], b)
    state = net.state_dict(params[1].numpy())
    np.testing.assert_array_equal(state["0.weight"], w[1].numpy())
    np.testing.assert_array_equal(state["0.bias"], b[1].numpy())


@pytest.mark.parametrize("code", ["torch", "c"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_diverged_two_class_model_is_scored_by_torchs_argmax(code, dtype):
    # logits [x, inf] and, where x = 0, [0, nan]: a NaN in one logit is that class (torch's argmax),
    # which the margin z1 - z0 alone cannot tell
    net = Net([2, 2], "relu", dtype)
    model = build_model(ModelConfig(hidden=[]), 2, 2, dtype=dtype)
    with torch.no_grad():
        linear_layers(model)[0].weight.copy_(torch.tensor([[1.0, 0.0], [math.inf, 0.0]]))
        linear_layers(model)[0].bias.zero_()
    X, y = torch.tensor([[2.0, 1.0], [3.0, 1.0], [0.0, 1.0], [4.0, 1.0]], dtype=dtype), torch.tensor([0, 1, 1, 0])
    (loss, acc), = evaluate(code, net, stacked(net, [model]), X, y, [4])
    with torch.no_grad():
        z = model(X)
    assert math.isnan(loss.item()) and math.isnan(F.cross_entropy(z, y).item())
    assert acc.item() == (z.argmax(1) == y).double().mean().item() == 0.5


def test_a_kernel_that_does_not_compile_is_said_once_and_the_torch_code_trains(monkeypatch, tmp_path, capsys):
    from trainlab.population import compiled as kernel

    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler")
    broken = tmp_path / "kernel.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(kernel, "SOURCE", broken)
    monkeypatch.setattr(kernel, "_fallback_said", False)
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path / "cache"))
    kernel._build.cache_clear()
    try:
        assert kernel.kernel_status(torch.float32).startswith("torch fallback: the C kernel did not compile with ")
        assert compiled(Net([2, 4, 2], "relu", torch.float32)) is None
        batch = train_population(expand(sweep(seeds=1)), DataCache()(sweep(seeds=1)))  # float64: not said again
        assert all(r.status == "ok" for r in batch)
        said = capsys.readouterr().err.splitlines()
        assert len(said) == 1 and "torch code, ~3× slower" in said[0] and "did not compile" in said[0], said
    finally:
        kernel._build.cache_clear()


def test_c_kernel_infinities_are_torchs():
    """Where training blows up, the kernel must say so exactly when torch does (a diverged run)."""
    # a float32 loss sum past the largest float is inf, as torch's float32 sum
    net = Net([2, 3], "identity", torch.float32)  # logits = W x + b
    params = torch.zeros(1, net.n_params)
    net.bias(params, 0)[0, :, 0] = torch.tensor([0.0, 1e37, 0.0])
    X, y = torch.randn(100, 2), torch.zeros(100, dtype=torch.long)  # 1e37 per point
    [(loss, _)] = c_kernel(net).evaluate(params, augmented_t(X), y, [100])
    assert math.isinf(loss.item()) and math.isinf(F.cross_entropy(X @ torch.zeros(2, 3) + torch.tensor([0.0, 1e37, 0.0]), y))
    # an infinite weight into a saturated tanh: autograd's gradient stays finite, whatever the
    # minibatch's size (a block of 64 points is padded: padding must not make NaN)
    net = Net([2, 5, 2], "tanh", torch.float64)
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=[5], activation="tanh"), 2, 2, dtype=torch.float64)
    with torch.no_grad():
        model[0].weight[0, 0] = math.inf
    params = stacked(net, [model])
    for m in (10, 64, 70):
        X, y = torch.randn(m, 2, dtype=torch.float64), torch.randint(0, 2, (m,))
        model.zero_grad()
        F.cross_entropy(model(X), y).backward()
        table = torch.cat([X, torch.ones(m, 1, dtype=torch.float64), F.one_hot(y, 2).double()], 1)
        grad = torch.empty_like(params)
        c_kernel(net).gradients(params, table, None, m, grad)
        expected = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert grad.isnan().sum() == expected.isnan().sum() == 0, m
    # a NaN activation passes the ReLU's backward, as in autograd
    net = Net([2, 4, 2], "relu", torch.float64)
    model = build_model(ModelConfig(hidden=[4]), 2, 2, dtype=torch.float64)
    with torch.no_grad():
        model[0].bias[1] = math.nan
    X, y = torch.randn(8, 2, dtype=torch.float64), torch.randint(0, 2, (8,))
    F.cross_entropy(model(X), y).backward()
    table = torch.cat([X, torch.ones(8, 1, dtype=torch.float64), F.one_hot(y, 2).double()], 1)
    grad = torch.empty_like(stacked(net, [model]))
    c_kernel(net).gradients(stacked(net, [model]), table, None, 8, grad)
    assert grad.isnan().sum() == sum(p.grad.isnan().sum() for p in model.parameters())
    [(loss, _)] = c_kernel(net).evaluate(stacked(net, [model]), augmented_t(X), y, [8])
    assert math.isnan(loss.item())  # and through its forward: a diverged model is found by its loss


def test_c_kernel_refuses_arrays_it_would_misread():
    net = Net([2, 4, 2], "relu", torch.float32)
    kernel = c_kernel(net)
    params = torch.zeros(3, net.n_params)
    X, y = torch.randn(10, 2), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="int64"):
        kernel.evaluate(params, augmented_t(X), y.int(), [10])
    with pytest.raises(ValueError, match="float32"):
        kernel.evaluate(params.double(), augmented_t(X), y, [10])
    with pytest.raises(ValueError, match="cover"):
        kernel.evaluate(params, augmented_t(X), y, [4])


def test_a_population_smaller_than_a_slice_per_core_is_split_across_the_cores(monkeypatch):
    import trainlab.population.loop as loop

    cfg = sweep(seeds=5)
    specs, data = expand(cfg), DataCache()(cfg)
    one = train_population(specs, data, workers=1)
    slices = []
    real = loop.train_slice
    both_started = threading.Barrier(2, timeout=30)

    def train_slice(setup, sl, *a):
        slices.append(len(sl))
        both_started.wait()  # else a thread that starts late finds the rest re-cut by the first slice's timing
        return real(setup, sl, *a)

    monkeypatch.setattr(loop, "train_slice", train_slice)
    monkeypatch.setattr(loop, "PARALLEL_EPOCH_WORK", 1)
    two = train_population(specs, data, workers=2)
    assert slices == [5, 5]  # 10 models in two slices, one per thread
    np.testing.assert_array_equal(one.history, two.history)


def slice_sizes(slicer) -> list[int]:
    """The sizes of the slices ``slicer`` hands out until none is left."""
    sizes = []
    while (index := slicer.next()) is not None:
        sizes.append(len(index))
    return sizes


def test_after_a_timed_first_slice_the_rest_is_cut_into_equal_slices_of_about_slice_seconds():
    from trainlab.population.loop import SLICE_SECONDS, Slicer

    epochs = 100
    slicer = Slicer(1000, first=50, least=10, most=400, threads=2, epochs=epochs)
    firsts = [slicer.next(), slicer.next()]
    assert [len(s) for s in firsts] == [50, 50]
    # 50 models × 100 epochs in SLICE_SECONDS / 2: a slice of SLICE_SECONDS holds 100 models;
    # the 900 left go in 10 slices of 90 (a multiple of the 2 threads, so both finish together)
    slicer.timed(SLICE_SECONDS / 2, 50 * epochs)
    assert slice_sizes(slicer) == [90] * 10
    assert slicer.next() is None
    slicer.timed(SLICE_SECONDS / 100, 50 * epochs)  # only the first timing plans the slices
    assert slicer.size == 90


def test_slices_cut_from_a_timing_keep_to_their_least_and_most_models():
    from trainlab.population.loop import SLICE_SECONDS, Slicer

    slow = Slicer(100, first=20, least=10, most=40, threads=1, epochs=10)
    slow.next()
    slow.timed(SLICE_SECONDS * 100, 20 * 10)  # far slower than SLICE_SECONDS: still least models
    assert slice_sizes(slow) == [10] * 8
    fast = Slicer(100, first=20, least=10, most=40, threads=1, epochs=10)
    fast.next()
    fast.timed(SLICE_SECONDS / 100, 20 * 10)  # far quicker: most models, cut evenly
    assert slice_sizes(fast) == [40, 40]


def test_progress_is_reported_every_epoch_and_adds_up_to_the_runs():
    from trainlab.population import population_engine

    cfg = sweep(seeds=5)
    specs = expand(cfg)
    advanced = []
    results = [r for chunk in population_engine(specs, DataCache(), progress=advanced.append) for r in chunk]
    assert len(results) == len(specs)
    assert sum(advanced) == pytest.approx(len(specs))
    assert len(advanced) >= cfg.train.epochs  # at least once an epoch, not once a population


def test_progress_adds_up_to_the_runs_when_some_stop_early_or_diverge():
    """Early-stopped and diverged runs count their untrained epochs as done: the bar reaches 100%."""
    from trainlab.population import population_engine

    cfg = config_from_dict({"seeds": 3, "data": {"n_samples": 200}, "model": {"hidden": [8]},
                            "train": {"epochs": 60, "early_stopping": {"patience": 2, "min_delta": 0.05}},
                            "grid": {"optim.lr": [0.01, 1e7]}})
    specs = expand(cfg)
    advanced = []
    results = [r for chunk in population_engine(specs, DataCache(), progress=advanced.append) for r in chunk]
    statuses = {r.status for r in results}
    assert {"diverged", "early_stopped"} <= statuses
    assert sum(advanced) == pytest.approx(len(specs))
