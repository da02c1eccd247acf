"""Gradient checking: passes on correct backprop at any depth, fails on every planted bug and names it."""

import pytest
import torch

from tests.conftest import assert_bad_input
from trainlab.errors import BadInput
from trainlab.config import config_from_dict
from trainlab.gradcheck import (BUGS, THRESHOLD, bug_losses, course_tinynet, gradcheck, numerical_gradients,
                                 relative_error, scalar_demo)

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
    "no-activation-derivative": ["0.weight", "0.bias", "2.weight", "2.bias"],
    "wrong-probabilities": ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"],
    "bias-mean": ["0.bias", "2.bias", "4.bias"],
    "no-batch-mean": ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"],
    "gradient-ascent": [],
}


@pytest.mark.parametrize("bug", [b for b in BUGS if b != "w1-shape"])
def test_every_planted_bug_fails_naming_the_wrong_parameters(bug):
    result = gradcheck(config_from_dict({"model": {"hidden": [8, 8]}}), bug=bug)
    assert not result.ok
    assert result.wrong == EXPECTED_WRONG[bug]
    assert result.descent.ok == (bug != "gradient-ascent")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_courses_w1_shape_bug_fails_with_a_message_naming_the_shapes(task):
    # The course's W1 = torch.randn(h, k): W1 with its dimensions swapped cannot multiply X.
    data = {"name": "plane", "task": "regression"} if task == "regression" else {}
    result = gradcheck(config_from_dict({"data": data, "model": {"hidden": [10]}}), bug="w1-shape")
    assert not result.ok and result.params == [] and result.descent is None
    assert result.shape_error == ("layer 1: A0 is 16×2 but W1 is 2×10: Z1 = A0 W1ᵀ needs W1 of shape (units, 2), "
                                  "one row per unit and one column per input of the layer (16×2 @ 10×2 cannot be "
                                  "multiplied)")


REGRESSION_CASES = {
    "tanh-1-output": {"hidden": [8, 8], "activation": "tanh"},
    "relu-1-output": {"hidden": [16], "init": "he"},
    "linear-regression": {"hidden": []},
    "per-layer-dropout-1-output": {"hidden": [8, 6], "activation": ["tanh", "gelu"], "dropout": [0.3, 0.1]},
}


@pytest.mark.parametrize("case", list(REGRESSION_CASES))
def test_mse_backprop_of_a_regression_with_one_output_passes(case):
    cfg = config_from_dict({"data": {"name": "plane", "task": "regression"}, "model": REGRESSION_CASES[case]})
    result = gradcheck(cfg)
    assert result.loss == "mse" and result.params[-1].shape == (1,)  # b_L: one output
    assert result.ok, [(p.name, p.rel_numerical, p.rel_autograd) for p in result.params]
    assert max(p.rel_autograd for p in result.params) < 1e-10


@pytest.mark.parametrize("bug", [b for b in BUGS if "mse" in bug_losses(b) and b != "w1-shape"])
def test_mse_backprop_fails_on_each_planted_bug(bug):
    cfg = config_from_dict({"data": {"name": "plane", "task": "regression"},
                            "model": {"hidden": [8, 8], "activation": "tanh"}})
    result = gradcheck(cfg, bug=bug)
    assert not result.ok
    assert result.wrong == EXPECTED_WRONG[bug]  # an error spoils the gradients below it, as with cross-entropy
    assert result.descent.ok == (bug != "gradient-ascent")


def test_a_cross_entropy_bug_is_refused_on_mse():
    cfg = config_from_dict({"data": {"name": "plane", "task": "regression"}})
    with pytest.raises(BadInput, match="wrong-probabilities: a bug of the cross-entropy loss"):
        gradcheck(cfg, bug="wrong-probabilities")


def courses_tinynet():
    """Course 004's own code path: TinyNet made right after torch.manual_seed(0), its input and target."""
    class TinyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.act = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1), torch.nn.Tanh()

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    net = TinyNet()
    torch.random.set_rng_state(state)
    return net, torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0]])


def test_the_courses_tinynet_is_reproduced_exactly_and_passes():
    net, x, target = courses_tinynet()
    model, X, y = course_tinynet()
    assert all(torch.equal(p.detach().double(), q.detach()) for p, q in zip(net.parameters(), model.parameters()))
    assert torch.equal(x.double(), X) and torch.equal(target.double().flatten(), y)
    torch.nn.MSELoss()(net(x), target).backward()  # the course's autograd gradients, in float32

    result = gradcheck(course_004=True)
    assert result.ok and result.loss == "mse" and result.n_samples == 1
    assert [p.shape for p in result.params] == [(2, 2), (2,), (1, 2), (1,)]
    model.zero_grad()
    torch.nn.functional.mse_loss(model(X)[:, 0], y).backward()
    for course, ours in zip(net.parameters(), model.parameters()):  # float32 rounding apart
        assert course.grad.double().flatten().tolist() == pytest.approx(ours.grad.flatten().tolist(), rel=1e-6)


def test_the_courses_tinynet_fails_on_the_courses_bugs():
    swapped = gradcheck(course_004=True, bug="w1-shape")  # W1 is 2×2: the swap fits and is a silent transpose
    assert not swapped.ok and swapped.shape_error is None and "0.weight" in swapped.wrong
    assert not gradcheck(course_004=True, bug="gradient-ascent").descent.ok
    assert gradcheck(course_004=True, bug="no-activation-derivative").wrong == ["0.weight", "0.bias"]


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

    bad = cli("gradcheck", "--bug", "no-activation-derivative")
    assert bad.code == 1
    assert "FAIL: wrong gradient for 0.weight (W1), 0.bias (b1)." in bad.out

    shape = cli("gradcheck", "--bug", "w1-shape")
    assert shape.code == 1 and "Traceback" not in shape.out + shape.err
    assert "FAIL: the forward pass cannot run: layer 1: A0 is 16×2 but W1 is 2×32" in " ".join(shape.out.split())

    course = cli("gradcheck", "--course-004")
    assert course.code == 0, course.err
    assert "2→2→1 tanh (the course's TinyNet, seed 0), MSE, 1 sample" in " ".join(course.out.split())
    assert "PASS" in course.out

    uphill = cli("gradcheck", "--bug", "gradient-ascent")
    assert uphill.code == 1
    assert "UPHILL" in uphill.out and "wrong gradient" not in uphill.out


def test_cli_bad_input(cli):
    assert_bad_input(cli("gradcheck", "--bug", "nope"), "--bug 'nope'", "w1-shape")
    assert_bad_input(cli("gradcheck", "--course-004", "--set", "model.hidden=[3]"), "--course-004", "no settings")
    assert_bad_input(cli("gradcheck", "--set", "data.name=plane", "--set", "data.task=regression",
                         "--bug", "wrong-probabilities"), "wrong-probabilities", "mean squared error")
    assert_bad_input(cli("gradcheck", "--set", "optim.lr=1"), "optim.lr=1", "model.* and data.*")
    assert_bad_input(cli("gradcheck", "--set", "model.activation=swish"), "model.activation")
    assert_bad_input(cli("gradcheck", "--samples", "0"), "--samples")


def test_a_planted_bug_is_caught_through_dropout_masks():
    cfg = config_from_dict({"model": {"hidden": [8, 6], "activation": ["tanh", "relu"], "dropout": 0.3}})
    result = gradcheck(cfg, bug="no-activation-derivative")
    assert not result.ok and "0.weight" in result.wrong
    assert "tanh,relu, dropout 0.3 (fixed masks)" in result.architecture
