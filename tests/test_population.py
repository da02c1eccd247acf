"""The population engine against the reference engine (the oracle), and its planning of sweeps."""

from __future__ import annotations

import csv
import itertools
import statistics

import numpy as np
import pytest

from conftest import assert_bad_input, same_history
from trainlab.config import RunConfig, RunSpec, TrainConfig, config_from_dict, expand
from trainlab.population import plan, population_engine, train_population, unsupported
from trainlab.population.plan import bytes_per_model, parse_memory
from trainlab.data import DataCache
from trainlab.train import train

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"]


def mixed_grid(dtype: str, activations=("relu", "gelu"), **train_extra) -> RunConfig:
    """Activations × optimizers × seeds, with weight decay, a schedule and early stopping."""
    return config_from_dict({
        "name": "mixed",
        "seeds": 2,
        "data": {"n_samples": 200, "noise": 0.3},
        "model": {"hidden": [8, 6]},
        "optim": {"lr": 0.02, "weight_decay": 1e-3, "schedule": {"name": "step", "step_size": 4, "gamma": 0.5}},
        "train": {"epochs": 12, "batch_size": 32, "dtype": dtype, "early_stopping": {"patience": 3}, **train_extra},
        "grid": {"model.activation": list(activations), "optim.name": OPTIMIZERS},
    })


def both_engines(cfg: RunConfig, **options):
    specs, data_for = expand(cfg), DataCache()
    population = [r for chunk in population_engine(specs, data_for, **options) for r in chunk]
    reference = [train(s.config, s.seed, data=data_for(s.config), spec=s) for s in specs]
    return sorted(population, key=lambda r: r.spec.run_id), sorted(reference, key=lambda r: r.spec.run_id)


def final_loss_gaps(population, reference) -> list[float]:
    gaps = []
    for p, r in zip(population, reference):
        assert p.spec.run_id == r.spec.run_id
        assert (p.status, p.epochs_run, p.best_epoch, p.final_epoch) == (r.status, r.epochs_run, r.best_epoch,
                                                                          r.final_epoch), p.spec.run_id
        assert np.array_equal(p.history["lr"], r.history["lr"])
        assert p.params.keys() == r.params.keys()
        ps, rs = p.summary(), r.summary()
        gaps += [abs(ps[c] - rs[c]) for c in ("final_train_loss", "final_val_loss")]
    return gaps


@pytest.mark.parametrize("code", ["c", "torch"])  # the compiled inner loops, and torch's without a compiler
def test_float64_mixed_grid_agrees_with_the_reference_engine(code, monkeypatch):
    monkeypatch.setenv("TRAINLAB_KERNEL", code)
    population, reference = both_engines(mixed_grid("float64"))
    statuses = {r.status for r in reference}
    assert statuses == {"ok", "early_stopped"}  # the grid exercises both paths
    gaps = final_loss_gaps(population, reference)
    assert max(gaps) <= 1e-6
    assert statistics.median(gaps) <= 1e-9
    for p, r in zip(population, reference):
        for c in ("train_loss", "val_loss", "grad_norm"):
            np.testing.assert_allclose(p.history[c], r.history[c], rtol=1e-6, atol=1e-9)
        assert np.array_equal(p.history["train_acc"], r.history["train_acc"])
        for name in r.params:
            np.testing.assert_allclose(p.params[name], r.params[name], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("code", ["c", "torch"])
@pytest.mark.parametrize("data, hidden", [
    ({"name": "moons"}, []),  # logistic regression: the margin is the only layer
    ({"name": "moons"}, [5]),  # one hidden layer: evaluated straight into the margin
    ({"name": "blobs", "n_classes": 3}, [6]),  # three classes: the softmax
    ({"name": "spiral", "n_classes": 3}, [4, 4]),
])
def test_float64_agrees_at_every_depth_with_two_or_three_classes(code, data, hidden, monkeypatch):
    monkeypatch.setenv("TRAINLAB_KERNEL", code)
    cfg = config_from_dict({"seeds": 2, "data": {**data, "n_samples": 150}, "model": {"hidden": hidden},
                            "optim": {"lr": 0.05}, "train": {"epochs": 6, "batch_size": 40, "dtype": "float64"},
                            "grid": {"model.activation": ["relu", "tanh"], "optim.name": ["sgd", "adam"]}})
    population, reference = both_engines(cfg)
    assert max(final_loss_gaps(population, reference)) <= 1e-9
    for p, r in zip(population, reference):
        np.testing.assert_allclose(p.history["val_loss"], r.history["val_loss"], rtol=1e-9, atol=1e-12)
        for column in ("train_acc", "val_acc"):
            assert np.array_equal(p.history[column], r.history[column])


@pytest.mark.parametrize("code", ["c", "torch"])
@pytest.mark.parametrize("data, hidden", [({"name": "digits"}, [16]), ({"name": "iris"}, [6, 5]),
                                          ({"name": "breast_cancer"}, [8]), ({"name": "function", "function": "cubic"}, [])])
def test_float64_agrees_on_real_and_function_data(code, data, hidden, monkeypatch):
    """64 inputs and 10 classes, 4 and 3, 30 and 2 (the batch-major in → H → 2 layout): the layouts
    and kernels take any width, and the metrics of the returned models (their predictions) are the
    reference engine's."""
    monkeypatch.setenv("TRAINLAB_KERNEL", code)
    cfg = config_from_dict({"seeds": 2, "data": {**data, "split": [0.6, 0.2, 0.2]}, "model": {"hidden": hidden},
                            "optim": {"lr": 0.05}, "train": {"epochs": 3, "batch_size": 64, "dtype": "float64"},
                            "grid": {"optim.name": ["sgd", "adam"]}})
    assert unsupported(cfg) is None  # trained as a population
    population, reference = both_engines(cfg)
    assert max(final_loss_gaps(population, reference)) <= 1e-9
    for p, r in zip(population, reference):
        for column in ("train_acc", "val_acc"):
            assert np.array_equal(p.history[column], r.history[column])
        assert p.test_acc == r.test_acc
        assert p.metrics.keys() == r.metrics.keys() == {"val", "test"}
        for split, scores in r.metrics.items():  # confusion matrices equal, scores to rounding
            assert p.metrics[split]["confusion"] == scores["confusion"]
            for key in ("precision", "recall", "f1", "macro_f1"):
                np.testing.assert_allclose(p.metrics[split][key], scores[key], rtol=1e-12)
        assert p.summary()["test_macro_f1"] == pytest.approx(r.summary()["test_macro_f1"])


@pytest.mark.parametrize("code", ["c", "torch"])
def test_float64_agrees_with_dropout_and_an_activation_per_layer(code, monkeypatch):
    """A mixed grid of per-layer activations, dropout rates (one, and one per layer) and optimizers:
    the same dropout masks in both engines, so the same training to rounding."""
    monkeypatch.setenv("TRAINLAB_KERNEL", code)
    cfg = config_from_dict({
        "name": "dropout", "seeds": [3], "data": {"n_samples": 150, "noise": 0.3}, "model": {"hidden": [8, 6]},
        "optim": {"lr": 0.05}, "train": {"epochs": 5, "batch_size": 40, "dtype": "float64"},
        "grid": {"model.activation": [["gelu", "relu"], "tanh"], "model.dropout": [0.0, 0.3, [0.5, 0.0]],
                 "optim.name": ["sgd", "adam"]},
    })
    population, reference = both_engines(cfg)
    assert max(final_loss_gaps(population, reference)) <= 1e-9
    for p, r in zip(population, reference):
        np.testing.assert_allclose(p.history["train_loss"], r.history["train_loss"], rtol=1e-9, atol=1e-12)
        for name in r.params:
            np.testing.assert_allclose(p.params[name], r.params[name], rtol=1e-9, atol=1e-12)
    # dropout changed the training: each rate trains a different model from the same seed
    by_rate: dict = {}
    for r in reference:
        point = (str(r.spec.grid_values["model.activation"]), r.spec.grid_values["optim.name"], r.spec.seed)
        by_rate.setdefault(point, []).append(r.params["0.weight"])
    assert all(not np.allclose(a, b) for weights in by_rate.values() for a, b in itertools.pairwise(weights))


@pytest.mark.parametrize("code", ["c", "torch"])
def test_dropout_masks_follow_the_models_that_stay(code, monkeypatch):
    """Models leave a slice as they diverge or stop early; each of the others keeps drawing its own masks."""
    monkeypatch.setenv("TRAINLAB_KERNEL", code)
    cfg = config_from_dict({
        "seeds": 3, "data": {"n_samples": 150, "noise": 0.4},
        "model": {"hidden": [8, 6], "activation": ["tanh", "relu"], "dropout": [0.3, 0.1], "init": "large"},
        "optim": {"name": "adam"},
        "train": {"epochs": 30, "batch_size": 40, "dtype": "float64", "early_stopping": {"patience": 3}},
        "grid": {"optim.lr": [0.05, 0.01, 50.0]},
    })
    population, reference = both_engines(cfg)
    assert len({(r.status, r.epochs_run) for r in reference}) > 2  # models leave at different epochs
    assert max(final_loss_gaps(population, reference)) <= 1e-9


def test_float32_agrees_loosely():
    population, reference = both_engines(mixed_grid("float32", activations=["tanh", "sigmoid"]))
    assert max(final_loss_gaps(population, reference)) <= 1e-4


def test_test_split_accuracy_matches():
    cfg = config_from_dict({"seeds": 3, "data": {"split": [0.6, 0.2, 0.2], "n_samples": 200},
                            "train": {"epochs": 4, "dtype": "float64"}})
    population, reference = both_engines(cfg)
    assert [p.test_acc for p in population] == [r.test_acc for r in reference]


def test_a_diverging_model_does_not_disturb_the_others():
    base = {"seeds": 2, "data": {"n_samples": 200}, "model": {"init": "large"},
            "train": {"epochs": 15, "dtype": "float64"}}
    mixed = config_from_dict({**base, "grid": {"optim.lr": [0.05, 1e6]}})
    calm = config_from_dict({**base, "grid": {"optim.lr": [0.05]}})
    data_for = DataCache()
    results = train_population(expand(mixed), data_for(mixed))
    alone = train_population(expand(calm), data_for(calm))
    wild = [r for r in results if r.spec.grid_values["optim.lr"] == 1e6]
    assert {r.status for r in wild} == {"diverged"}
    assert all(r.epochs_run < 15 for r in wild)
    reference = [train(s.config, s.seed, data=data_for(s.config)) for s in expand(mixed)]
    assert [r.epochs_run for r in results] == [r.epochs_run for r in reference]
    kept = [r for r in results if r.spec.grid_values["optim.lr"] == 0.05]
    for a, b in zip(kept, alone):
        assert a.status == "ok"
        assert same_history(a.history, b.history)  # bit for bit: the NaNs stayed in their own rows


def test_chunking_gives_the_same_results_as_one_big_chunk():
    cfg = mixed_grid("float64")
    specs, data_for = expand(cfg), DataCache()
    tiny = 3 * bytes_per_model(cfg, data_for(cfg)) + (8 << 20)
    chunks = plan(specs, data_for, max_memory=tiny)
    assert len(chunks) > len(OPTIMIZERS) * 2 and max(len(c.specs) for c in chunks) <= 3
    small = {r.spec.run_id: r for chunk in population_engine(specs, data_for, max_memory=tiny) for r in chunk}
    big = {r.spec.run_id: r for chunk in population_engine(specs, data_for) for r in chunk}
    assert small.keys() == big.keys()
    for run_id, r in big.items():
        # Equal up to the last bits: vectorized kernels round a few elements differently at other sizes.
        assert (small[run_id].status, small[run_id].epochs_run) == (r.status, r.epochs_run)
        for c, values in r.history.items():
            np.testing.assert_allclose(small[run_id].history[c], values, rtol=1e-12, atol=1e-15)


def test_a_sweep_is_grouped_by_shape_and_chunked_to_the_memory_budget():
    cfg = config_from_dict({"seeds": 1000, "grid": {"model.activation": ["relu", "tanh"],
                                                    "model.hidden": [[32], [64, 64]],
                                                    "optim.lr": [0.1, 0.01, 0.001]}})
    specs, data_for = expand(cfg), DataCache()
    assert len(specs) == 12_000
    budget = 1 << 30
    chunks = plan(specs, data_for, max_memory=budget)
    assert sum(len(c.specs) for c in chunks) == len(specs) and all(c.population for c in chunks)
    for c in chunks:  # one shape per chunk, learning rates mixed, within the budget
        assert len({(s.config.model.activation, tuple(s.config.model.hidden)) for s in c.specs}) == 1
        assert len(c.specs) * bytes_per_model(c.specs[0].config, data_for(cfg)) <= budget
    assert any(len({s.config.optim.lr for s in c.specs}) > 1 for c in chunks)


class TrainWithL1(TrainConfig):
    """An option another developer might add later, which this engine knows nothing about."""

    l1: float = 0.0


class ConfigWithL1(RunConfig):
    train: TrainWithL1 = TrainWithL1()


def test_options_the_engine_does_not_implement_fall_back_to_the_reference_engine():
    assert unsupported(ConfigWithL1(train={"l1": 0.0})) is None  # at its default the option changes nothing
    with_l1 = ConfigWithL1(seeds=2, train={"l1": 0.1, "epochs": 2})
    assert "train.l1" in unsupported(with_l1)
    specs = [RunSpec(run_id=f"l1/seed={seed}", experiment="l1", group="l1", seed=seed, grid_values={},
                     config=with_l1) for seed in (0, 1)]
    assert [c.population for c in plan(specs, DataCache())] == [False, False]


def test_trainlab_run_uses_the_population_engine_for_a_sweep(cli, write_config, tmp_path):
    config = write_config('name = "sweep"\nseeds = 2\n[data]\nn_samples = 200\n[train]\nepochs = 3\n'
                          'dtype = "float64"\n[grid]\n"optim.lr" = [0.1, 0.01]\n')
    from trainlab.runner import choose_engine

    assert choose_engine("auto", n_runs=4) == "population" and choose_engine("auto", n_runs=1) == "reference"
    for engine in ("population", "reference"):
        assert cli("run", config, "--engine", engine, "--out", tmp_path / engine).code == 0
    pop, ref = (list(csv.DictReader(open(tmp_path / e / "runs.csv"))) for e in ("population", "reference"))
    assert [list(r) for r in pop] == [list(r) for r in ref]
    for p, r in zip(pop, ref):
        assert p["run_id"] == r["run_id"] and p["status"] == r["status"]
        assert float(p["final_val_loss"]) == pytest.approx(float(r["final_val_loss"]), abs=1e-9)
    assert (tmp_path / "population" / "history.csv").read_text().splitlines()[0] == \
        (tmp_path / "reference" / "history.csv").read_text().splitlines()[0]


def test_max_memory_option(cli, write_config, tmp_path):
    config = write_config('seeds = 2\n[data]\nn_samples = 100\n[train]\nepochs = 2\n')
    assert_bad_input(cli("run", config, "--max-memory", "lots", "--out", tmp_path / "a"), "--max-memory", "4GiB")
    assert not (tmp_path / "a").exists()
    assert cli("run", config, "--max-memory", "64MiB", "--out", tmp_path / "b").code == 0
    assert parse_memory("4GiB") == 4 << 30 and parse_memory("512m") == 512 << 20


def test_bad_executor_is_bad_input(cli, write_config, tmp_path):
    config = write_config('seeds = 2\n[train]\nepochs = 1\n')
    assert_bad_input(cli("run", config, "--executor", "spark", "--out", tmp_path / "x"), "--executor", "ray")
    assert_bad_input(cli("run", config, "--executor", "ray", "--engine", "reference", "--out", tmp_path / "y"),
                     "--engine population")


def test_a_batch_1_population_fits_one_chunk_of_a_2_gib_budget():
    """The slices' memory is sized as the engine cuts them (about a second of work each), not by
    the widest slice a batch of one would allow: 256 models of 2→8→2 are one population."""
    cfg = config_from_dict({"seeds": 256, "data": {"name": "moons"}, "model": {"hidden": [8]},
                            "train": {"epochs": 50, "batch_size": 1}})
    chunks = plan(expand(cfg), DataCache(), max_memory=2 << 30)
    assert [len(c.specs) for c in chunks] == [256]
