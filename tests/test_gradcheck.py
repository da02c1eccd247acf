"""Gradient checking: passes on correct backprop at any depth, fails on every planted bug and names it."""

import pytest
import torch

from tests.conftest import assert_bad_input
from trainlab.config import config_from_dict
from trainlab.gradcheck import BUGS, THRESHOLD, gradcheck, numerical_gradients, relative_error, scalar_demo

CASES = {
    "logistic-regression": {"hidden": []},
    "relu-1": {"hidden": [32]},
    "relu-3": {"hidden": [8, 8, 8], "init": "he"},
    "tanh-2": {"hidden": [8, 6], "activation": "tanh"},
    "sigmoid-small-init": {"hidden": [16, 16], "activation": "sigmoid", "init": "small"},
    "gelu-2": {"hidden": [8, 8], "activation": "gelu"},
    "leaky-2": {"hidden": [8, 8], "activation": "leaky_relu"},
    "identity-1": {"hidden": [6], "activation": "identity"},
    "per-layer-3": {"hidden": [6, 5, 4], "activation": ["tanh", "relu", "sigmoid"]},
    "per-layer-dropout": {"hidden": [8, 6], "activation": ["gelu", "leaky_relu"], "dropout": [0.4, 0.2]},
}


@pytest.mark.parametrize("case", list(CASES))
def test_correct_backprop_passes(case):
    result = gradcheck(config_from_dict({"model": CASES[case]}))
    assert result.ok, [(p.name, p.rel_numerical, p.rel_autograd) for p in result.params]
    assert result.descent.loss_after < result.descent.loss_before
    assert max(p.rel_autograd for p in result.params) < 1e-10  # manual = autograd to rounding


def test_passes_on_three_classes_and_another_data_set():
    cfg = config_from_dict({"data": {"name": "spiral", "n_classes": 3}, "model": {"hidden": [8, 8], "activation": "tanh"}})
    result = gradcheck(cfg, n_samples=9, seed=5)
    assert result.ok and result.n_samples == 9
    assert result.params[-1].shape == (3,)


EXPECTED_WRONG = {  # for a 2→8→8→2 MLP: W1 b1 W2 b2 W3 b3
    "transposed-w1": ["0.weight"],
    "no-activation-derivative": ["0.weight", "0.bias", "2.weight", "2.bias"],
    "wrong-probabilities": ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"],
    "bias-mean": ["0.bias", "2.bias", "4.bias"],
    "no-batch-mean": ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"],
    "gradient-ascent": [],
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_every_planted_bug_fails_naming_the_wrong_parameters(bug):
    result = gradcheck(config_from_dict({"model": {"hidden": [8, 8]}}), bug=bug)
    assert not result.ok
    assert result.wrong == EXPECTED_WRONG[bug]
    assert result.descent.ok == (bug != "gradient-ascent")


def test_the_loss_bug_is_caught_by_central_differences_not_by_autograd():
    # The backward pass is right; the loss it should be the derivative of is wrong.
    result = gradcheck(bug="wrong-probabilities")
    assert all(p.rel_numerical > 0.1 and p.rel_autograd < 1e-10 for p in result.params)


def test_relative_error_and_central_differences():
    a = torch.tensor([1.0, 0.0, 1e-9], dtype=torch.float64)
    n = torch.tensor([1.0 + 1e-6, 0.0, 0.0], dtype=torch.float64)
    assert relative_error(a, n).tolist() == pytest.approx([5e-7, 0.0, 1e-3])

    params = {"w": torch.tensor([2.0, -1.0], dtype=torch.float64)}
    grads, shrunk = numerical_gradients(lambda p: ((p["w"] ** 3).sum().item(), torch.empty(0)), params)
    assert grads["w"].tolist() == pytest.approx([12.0, 3.0], rel=1e-8)
    assert shrunk == 0 and params["w"].tolist() == [2.0, -1.0]  # the caller's tensors are untouched


def test_a_relu_kink_within_epsilon_shrinks_the_step_instead_of_failing():
    # relu(w) with w just 1e-7 above the kink: ±ε straddles 0 unless the step shrinks.
    def loss(p):
        z = p["w"]
        return torch.relu(z).sum().item(), (z > 0)

    grads, shrunk = numerical_gradients(loss, {"w": torch.tensor([1e-7], dtype=torch.float64)}, eps=1e-5)
    assert shrunk == 1 and grads["w"].item() == pytest.approx(1.0, rel=1e-6)


def test_scalar_autograd_demo_of_notebook_000():
    demo = scalar_demo()
    assert (demo.x, demo.y) == (1.5, 21.125)
    assert demo.analytic == demo.autograd == 19.5  # 3 · (3 · 1.5 + 2)
    assert demo.numerical == pytest.approx(19.5, abs=1e-6)


def test_cli_pass_fail_and_listing(cli):
    ok = cli("gradcheck", "--set", "model.hidden=[4,4]", "--set", "model.activation=tanh")
    assert ok.code == 0, ok.err
    assert "PASS" in ok.out and "0.weight (W1)" in ok.out and f"< {THRESHOLD:g}" in ok.out

    listing = cli("gradcheck", "--list-bugs")
    assert listing.code == 0
    lines = listing.out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(BUGS)
    assert "p̂[range(N)]" in listing.out

    bad = cli("gradcheck", "--bug", "transposed-w1")
    assert bad.code == 1
    assert "FAIL: wrong gradient for 0.weight (W1)." in bad.out

    uphill = cli("gradcheck", "--bug", "gradient-ascent")
    assert uphill.code == 1
    assert "UPHILL" in uphill.out and "wrong gradient" not in uphill.out


def test_cli_bad_input(cli):
    assert_bad_input(cli("gradcheck", "--bug", "nope"), "--bug 'nope'", "transposed-w1")
    assert_bad_input(cli("gradcheck", "--set", "optim.lr=1"), "optim.lr=1", "model.* and data.*")
    assert_bad_input(cli("gradcheck", "--set", "model.activation=swish"), "model.activation")
    assert_bad_input(cli("gradcheck", "--samples", "0"), "--samples")


def test_a_planted_bug_is_caught_through_dropout_masks():
    cfg = config_from_dict({"model": {"hidden": [8, 6], "activation": ["tanh", "relu"], "dropout": 0.3}})
    result = gradcheck(cfg, bug="no-activation-derivative")
    assert not result.ok and "0.weight" in result.wrong
    assert "tanh,relu, dropout 0.3 (fixed masks)" in result.architecture
