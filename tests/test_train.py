import math

import numpy as np
import pytest
from conftest import same_history

from trainlab.activations import ACTIVATIONS
from trainlab.config import config_from_dict
from trainlab.history import DIVERGENCE_FACTOR
from trainlab.train import Training, evaluate, train


def cfg(**sections):
    return config_from_dict(sections)


def test_moons_mlp_reaches_95_percent_val_accuracy():
    r = train(cfg(data={"name": "moons", "noise": 0.2, "n_samples": 1000}, optim={"name": "adam", "lr": 0.01},
                  train={"epochs": 60}))
    assert r.status == "ok"
    assert r.summary()["final_val_acc"] >= 0.95


def test_logistic_regression_fails_on_xor_where_an_mlp_succeeds():
    data = {"name": "xor", "n_samples": 800, "noise": 0.05}
    linear = train(cfg(data=data, model={"hidden": []}, optim={"name": "adam", "lr": 0.05}, train={"epochs": 60}))
    mlp = train(cfg(data=data, model={"hidden": [16]}, optim={"name": "adam", "lr": 0.05}, train={"epochs": 60}))
    assert linear.summary()["final_val_acc"] < 0.65
    assert mlp.summary()["final_val_acc"] > 0.93


def test_same_seed_same_history_bit_for_bit():
    c = cfg(train={"epochs": 5})
    a, b = train(c, seed=3), train(c, seed=3)
    assert same_history(a.history, b.history)
    assert not same_history(train(c, seed=4).history, a.history)


def test_float64_training():
    r = train(cfg(train={"epochs": 3, "dtype": "float64"}))
    assert r.params["0.weight"].dtype == np.float64


def test_divergence_is_a_status_not_a_crash():
    r = train(cfg(optim={"name": "sgd", "lr": 1e6}, model={"init": "large"}, train={"epochs": 50}))
    assert r.status == "diverged"
    assert r.epochs_run < 50
    assert not math.isfinite(r.history["train_loss"][-1])


def test_a_train_loss_100_times_the_untrained_models_is_divergence():
    wild = cfg(optim={"name": "adam", "lr": 1e9}, train={"epochs": 20})
    training = Training(wild)
    untrained, _ = evaluate(training.model, training.X_train, training.y_train)
    r = train(wild)
    losses = r.history["train_loss"]
    assert r.status == "diverged" and r.epochs_run < 20
    assert math.isfinite(losses[-1]) and losses[-1] > DIVERGENCE_FACTOR * untrained
    assert all(loss <= DIVERGENCE_FACTOR * untrained for loss in losses[:-1])
    assert len(r.history["val_loss"]) == r.epochs_run  # the untrained model's evaluation is not recorded
    calm = train(cfg(optim={"name": "adam", "lr": 0.01}, train={"epochs": 20}))
    assert calm.status == "ok" and calm.epochs_run == 20


def test_the_playground_steps_the_same_loop_train_runs():
    c = cfg(train={"epochs": 6, "early_stopping": {"patience": 2}}, optim={"lr": 0.5})
    training = Training(c, seed=2)
    epochs = training.epochs()
    records = [next(epochs) for _ in range(3)]  # a few epochs, a pause, then the rest
    assert training.epoch == 3 and not training.done
    records += list(epochs)
    assert training.done
    finished, whole = training.result(), train(c, seed=2)
    assert [r["val_loss"] for r in records] == whole.history["val_loss"].tolist() == finished.history["val_loss"].tolist()
    assert (finished.status, finished.best_epoch, finished.extra) == (whole.status, whole.best_epoch, whole.extra)
    assert all(np.array_equal(finished.params[k], whole.params[k]) for k in whole.params)


def test_early_stopping_restores_the_best_weights():
    c = cfg(
        data={"n_samples": 200, "noise": 0.4},
        model={"hidden": [128, 128]},
        optim={"name": "adam", "lr": 0.01},
        train={"epochs": 300, "batch_size": 16, "early_stopping": {"patience": 10}},
    )
    r = train(c)
    assert r.status == "early_stopped"
    assert r.epochs_run == r.best_epoch + 10
    assert r.final_epoch == r.best_epoch
    assert r.summary()["final_val_loss"] == min(r.history["val_loss"])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_activation_trains(activation):
    r = train(cfg(model={"activation": activation}, optim={"name": "adam", "lr": 0.01}, train={"epochs": 10}))
    assert r.status == "ok" and r.summary()["final_val_acc"] > 0.8


def test_dropout_changes_training_but_not_evaluation():
    base = {"model": {"hidden": [32, 32]}, "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": 8}}
    plain = train(cfg(**base), seed=1)
    training = Training(cfg(**{**base, "model": {"hidden": [32, 32], "dropout": 0.3}}), seed=1)
    for _ in training.epochs():
        pass
    dropped = training.result()
    assert not np.allclose(plain.history["train_loss"], dropped.history["train_loss"])  # another training
    assert dropped.summary()["final_val_acc"] > 0.8  # that still learns the moons
    # The recorded losses are evaluations without dropout: the same numbers every time they are taken.
    model = training.model
    once, again = evaluate(model, training.X_val, training.y_val), evaluate(model, training.X_val, training.y_val)
    assert once == again == (dropped.history["val_loss"][-1], dropped.history["val_acc"][-1])
    assert same_history(train(training.cfg, seed=1).history, dropped.history)  # and the run is reproducible


def test_multiclass_spiral():
    r = train(cfg(data={"name": "spiral", "n_classes": 3, "noise": 0.1}, model={"hidden": [64, 64]},
                  optim={"name": "adam", "lr": 0.01}, train={"epochs": 80}))
    assert r.summary()["final_val_acc"] > 0.85


def test_test_split_gives_test_accuracy():
    r = train(cfg(data={"split": [0.8, 0.1, 0.1]}, train={"epochs": 2}))
    assert 0 <= r.test_acc <= 1
