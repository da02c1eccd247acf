"""Diagnostics, the LR range test and the doctor: right on the configs whose fault is known."""

import math

import numpy as np
import pytest

from conftest import same_history
from PIL import Image

import trainlab as tl
from tests.conftest import assert_bad_input
from trainlab.config import config_from_dict, expand, to_toml
from trainlab.data import make_dataset, write_csv
from trainlab.doctor import diagnose
from trainlab.lrfind import lr_range_test
from trainlab.runner import reference_engine
from trainlab.train import train


def cfg(**sections):
    return config_from_dict(sections)


# ---------------------------------------------------------------------------- diagnostics


def test_diagnostics_are_recorded_per_epoch_and_layer():
    r = train(cfg(model={"hidden": [16, 8]}, train={"epochs": 7}), diagnostics=True)
    for key in ("grad_norm.1", "grad_norm.2", "grad_norm.3", "update_ratio.1", "update_ratio.3",
                "dead.1", "dead.2", "dead"):
        assert len(r.extra[key]) == 7, key
    assert "saturated" not in r.extra  # relu has no flat tails
    assert all(0 <= v <= 1 for v in r.extra["dead"])
    assert all(1e-5 < v < 1 for v in r.extra["update_ratio.1"])  # a healthy SGD step: ~1e-3 of the weights
    # per-layer norms make up the global one the history records
    total = [math.sqrt(sum(r.extra[f"grad_norm.{l}"][e] ** 2 for l in (1, 2, 3))) for e in range(7)]
    assert total == pytest.approx(r.history["grad_norm"], rel=0.25)


def test_diagnostics_are_on_by_default_and_do_not_change_training():
    c = cfg(model={"hidden": [8], "activation": "tanh"}, train={"epochs": 4})
    on, off = train(c), train(c, diagnostics=False)
    assert same_history(on.history, off.history)
    assert off.extra == {} and len(on.extra["saturated.1"]) == 4 and len(on.extra["grad_norm.2"]) == 4


def test_sweeps_skip_the_diagnostics_they_would_not_store():
    c = cfg(train={"epochs": 2})
    [[result]] = list(reference_engine(expand(c)[:1], lambda _: make_dataset(c.data)))
    assert result.extra == {}


def test_the_global_gradient_norm_is_made_of_the_layers():
    # full batch: one step per epoch, so the epoch means are the step's norms themselves
    r = train(cfg(model={"hidden": [16, 8]}, train={"epochs": 5, "batch_size": 0, "dtype": "float64"}),
              diagnostics=True)
    total = [math.sqrt(sum(r.extra[f"grad_norm.{l}"][e] ** 2 for l in (1, 2, 3))) for e in range(5)]
    assert total == pytest.approx(r.history["grad_norm"], rel=1e-12)


def test_saturation_and_dead_units_are_measured():
    saturated = train(cfg(model={"hidden": [32, 32], "activation": "tanh", "init": "large"}, train={"epochs": 2}),
                      diagnostics=True)
    assert saturated.extra["saturated.1"][-1] < 0.2 < 0.4 < saturated.extra["saturated.2"][-1]  # 32 inputs of std 1
    dead = train(cfg(model={"hidden": [32, 32]}, optim={"name": "adam", "lr": 0.3}, train={"epochs": 30}),
                 diagnostics=True)
    assert dead.extra["dead"][-1] > 0.4


def test_diverged_run_keeps_diagnostics_aligned_with_history():
    r = train(cfg(optim={"lr": 1e6}, model={"init": "large"}, train={"epochs": 50}), diagnostics=True)
    assert r.status == "diverged"
    assert len(r.extra["grad_norm.1"]) == r.epochs_run


# ---------------------------------------------------------------------------- LR range test


def test_lr_range_test_suggests_a_rate_that_trains_well():
    c = cfg(model={"hidden": [32]}, optim={"name": "sgd", "lr": 1e-4}, train={"epochs": 30})
    found = lr_range_test(c)
    assert found.lrs[0] == pytest.approx(1e-5) and found.lrs == sorted(found.lrs)
    assert 1e-3 < found.suggested_lr < 2.0
    assert found.suggested_lr == pytest.approx(found.best_lr / 10)
    slow = train(c).history["train_loss"][-1]
    suggested = train(cfg(model={"hidden": [32]}, optim={"name": "sgd", "lr": found.suggested_lr},
                          train={"epochs": 30})).history["train_loss"][-1]
    assert suggested < 0.6 * slow


def test_lr_range_test_stops_when_the_loss_blows_up():
    found = lr_range_test(cfg(optim={"name": "adam"}), lr_max=100.0, steps=60)
    assert len(found.lrs) < 60
    assert max(found.losses) > 3.9 * min(found.losses)


def test_cli_lrfind_writes_the_plot(cli, write_config, tmp_path):
    config = write_config('name = "lr"\n[model]\nhidden = [16]\n')
    out = tmp_path / "lr.png"
    result = cli("lrfind", config, "--out", out, "--steps", "40")
    assert result.code == 0, result.err
    assert "suggested lr" in result.out and str(out) in result.out
    assert Image.open(out).size[0] > 400
    assert_bad_input(cli("lrfind", config, "--lr-min", "1", "--lr-max", "0.1"), "lr_min < lr_max")


# ---------------------------------------------------------------------------- the doctor

HEALTHY = {"model": {"hidden": [32]}, "optim": {"name": "sgd", "lr": 0.05}, "train": {"epochs": 60}}
DIVERGING = {"optim": {"name": "sgd", "lr": 50.0}}
VANISHING = {"model": {"hidden": [16, 16, 16, 16], "activation": "sigmoid", "init": "small"}}
DEAD_RELU = {"model": {"hidden": [32, 32]}, "optim": {"name": "adam", "lr": 0.3}}
OVERFITTING = {
    "data": {"n_samples": 150, "noise": 0.35},
    "model": {"hidden": [128, 128]},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"batch_size": 16},
}


def faults(diagnosis):
    return {f.check: f for f in diagnosis.faults}


def test_doctor_finds_nothing_wrong_with_a_healthy_run():
    d = tl.diagnose(cfg(**HEALTHY))
    assert d.healthy, [(f.check, f.evidence) for f in d.faults]
    assert [f.status for f in d.findings] == ["ok"] * len(d.findings)
    assert len(d.findings) == 7


def test_doctor_diagnoses_divergence_and_says_which_lr_to_try():
    d = diagnose(cfg(**DIVERGING))
    assert list(faults(d)) == ["loss finite, not exploding"]
    finding = faults(d)["loss finite, not exploding"]
    assert d.result.status == "diverged"  # the loss passed 100 × the untrained model's in epoch 1
    assert "(untrained) to" in finding.evidence and "at epoch 1" in finding.evidence
    assert "a run diverges above 100×" in finding.evidence
    lr = float(finding.suggestion.split("--set optim.lr=")[1].split()[0])
    assert lr < 50 and lr == pytest.approx(d.lr_find.suggested_lr, rel=0.05)
    assert train(cfg(optim={"lr": lr}, train={"epochs": 20})).status == "ok"  # the advice works


def test_doctor_diagnoses_vanishing_gradients():
    d = diagnose(cfg(**VANISHING))
    finding = faults(d)["gradients reach layer 1"]
    assert "orders of magnitude" in finding.evidence
    assert "model.init=he" in finding.suggestion and "relu" in finding.suggestion
    assert "loss decreases" in faults(d)  # and the flat loss it causes
    # val stuck at chance: the course's checklist ("increase capacity a bit or try Adam with smaller LR")
    stuck = faults(d)["val accuracy above chance"]
    assert "nothing learned" in stuck.evidence
    assert stuck.suggestion.startswith("increase capacity a bit (--set model.hidden=[32,32,32,32]) or try Adam with "
                                       "a smaller learning rate (--set optim.name=adam --set optim.lr=0.005)")


def test_doctor_diagnoses_dead_relus():
    d = diagnose(cfg(**DEAD_RELU))
    finding = faults(d)["ReLU units alive"]
    assert d.result.extra["dead"][-1] >= 0.4
    assert "leaky_relu" in finding.suggestion and "optim.lr=" in finding.suggestion


def test_doctor_diagnoses_overfitting_and_names_the_epoch_to_stop():
    d = diagnose(cfg(**OVERFITTING))
    finding = faults(d)["val loss follows train loss"]
    best = int(d.result.history["val_loss"].argmin()) + 1
    assert f"epoch {best} is best" in finding.suggestion and "early_stopping" in finding.suggestion
    assert list(faults(d)) == ["val loss follows train loss"]


def test_doctor_spots_labels_that_do_not_belong_to_their_rows(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    write_csv(tmp_path / "random.csv", X, rng.integers(0, 2, size=400))
    d = diagnose(cfg(data={"name": "csv", "path": str(tmp_path / "random.csv")}, model={"hidden": [64, 64]},
                     optim={"name": "adam", "lr": 0.01}, train={"epochs": 60}))
    assert "val accuracy above chance" in faults(d)


def test_doctor_with_the_manual_engine_agrees():
    # In float64 this lr does not reach NaN: the run diverges by passing 100 × the untrained loss.
    d = diagnose(cfg(**DIVERGING, train={"dtype": "float64"}), engine="manual")
    assert list(faults(d)) == ["loss finite, not exploding"]
    assert d.result.status == "diverged" and math.isfinite(d.result.history["train_loss"][-1])
    assert "a run diverges above 100×" in faults(d)["loss finite, not exploding"].evidence


CLI_CASES = {  # config, exit code, what the output must say
    "healthy": (HEALTHY, 0, "Healthy: every check of the checklist passed."),
    "diverging": (DIVERGING, 1, "lower the learning rate: --set optim.lr="),
    "vanishing": (VANISHING, 1, "(vanishing gradients)"),
    "dead-relu": (DEAD_RELU, 1, "ReLU units alive │ FAULT"),
    "overfitting": (OVERFITTING, 1, "overfitting"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_doctor_exit_codes(cli, write_config, case):
    sections, code, says = CLI_CASES[case]
    config = write_config(to_toml(cfg(name=case, **sections)), f"{case}.toml")
    result = cli("doctor", config)
    assert result.code == code, result.out + result.err
    text = " ".join(result.out.split())  # rich wraps long lines to the terminal width
    assert " ".join(says.split()) in text
    assert ("fault found" in text or "faults found" in text) == (code == 1)


def test_cli_doctor_bad_input(cli, write_config):
    config = write_config('name = "ok"\n')
    assert_bad_input(cli("doctor", config, "--engine", "population"), "--engine 'population'")
    assert_bad_input(cli("doctor", config, "--epochs", "0"), "--epochs 0")
    assert_bad_input(cli("doctor", config, "--set", "model.activation=swish"), "model.activation")
    assert_bad_input(cli("doctor", config.parent / "missing.toml"), "missing.toml", "not found")


@pytest.mark.parametrize("direction, suggested, expected", [
    ("lower", 0.05, "--set optim.lr=0.001 (a tenth of the current rate"),  # the range test says higher: ignored
    ("raise", 0.001, "--set optim.lr=0.1 (10× the current rate"),
    ("lower", 0.002, "--set optim.lr=0.002 (LR range test"),
])
def test_the_lr_to_try_says_how_it_relates_to_the_current_rate(direction, suggested, expected):
    from types import SimpleNamespace

    from trainlab.doctor import Checks

    checks = SimpleNamespace(lr=0.01, lr_find=SimpleNamespace(suggested_lr=suggested, best_lr=10 * suggested))
    assert Checks.try_lr(checks, direction).startswith(expected)


def test_doctor_explains_a_loss_that_explodes_but_stays_finite():
    d = diagnose(cfg(optim={"name": "adam", "lr": 1e9}, train={"epochs": 4}))
    finding = faults(d)["loss finite, not exploding"]
    assert "(untrained) to" in finding.evidence and "a run diverges above 100×" in finding.evidence
    start = float(finding.evidence.split("rose from ")[1].split()[0])
    assert start == pytest.approx(math.log(2), rel=0.3)  # the untrained model's loss, before any step
    lr = float(finding.suggestion.split("--set optim.lr=")[1].split()[0])
    assert lr < 1e9


def test_doctor_says_huge_inputs_are_the_cause_not_the_learning_rate(tmp_path):
    path = tmp_path / "huge.csv"
    rows = "".join(f"{(i % 7 - 3) * 1e300},{(i % 5 - 2) * 1e299},{i % 2}\n" for i in range(120))
    path.write_text("x1,x2,y\n" + rows)
    d = diagnose(cfg(data={"name": "csv", "path": str(path), "scale": "none"}, train={"epochs": 3}))
    finding = faults(d)["loss finite, not exploding"]
    assert "the inputs are huge" in finding.evidence
    assert finding.suggestion.startswith("scale the inputs: --set data.scale=standard")
    assert d.lr_find is None  # not even its first step had a finite loss


def test_lr_range_test_whose_first_loss_is_not_finite_says_why(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("x1,x2,y\n" + "".join(f"{(i % 7 - 3) * 1e300},{i},{i % 2}\n" for i in range(60)))
    with pytest.raises(tl.BadInput, match="the loss is not finite at the first step .lr 1e-05.: the inputs may be "
                                          "too large"):
        lr_range_test(cfg(data={"name": "csv", "path": str(path), "scale": "none"}))


def test_doctor_reports_each_step_to_a_progress_callback():
    steps = []
    diagnose(cfg(train={"epochs": 3}), progress=steps.append)
    assert steps == ["training 3 epochs with the diagnostics on", "LR range test",
                     "overfitting 100 training rows (500 epochs)"]
