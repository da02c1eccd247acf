"""The size guard: sweeps too large to finish are refused before any work, and --yes goes on;
the decision-boundary plot stays within its memory budget however wide the network."""

import time

import pytest

import trainlab.budget as budget
import trainlab.runner  # noqa: F401  (imported here: the timings below are of the check, not of importing torch)
from conftest import TINY, assert_bad_input
from trainlab.config import config_from_dict

MILLION = TINY + "[grid]\n" + "".join(
    f'"{key}" = [{", ".join(str(v) for v in values)}]\n' for key, values in {
        "optim.lr": [0.01 * i for i in range(1, 11)],
        "optim.momentum": [0.05 * i for i in range(10)],
        "data.noise": [0.05 * i for i in range(1, 11)],
        "data.seed": list(range(10)),
        "train.epochs": list(range(1, 11)),
        "model.hidden": [[i] for i in range(1, 11)],
    }.items())


@pytest.mark.parametrize("overrides, fragments", [
    (["train.epochs=100000000"], ["200,000,000 model-epochs", "more than 10 minutes", "more than half this",
                                  "Pass --yes to go on"]),
    (["model.hidden=[100000]"], ["a layer of 100,000 units", "Pass --yes to go on"]),
])
def test_too_large_a_run_is_refused_at_once(cli, write_config, tmp_path, overrides, fragments):
    started = time.monotonic()
    r = cli("run", write_config(TINY), "--out", tmp_path / "o", *(f"--set={o}" for o in overrides))
    assert_bad_input(r, *fragments)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "o").exists()


def test_a_million_point_grid_is_refused_before_it_is_expanded(cli, write_config, tmp_path):
    started = time.monotonic()
    r = cli("run", write_config(MILLION), "--out", tmp_path / "o")
    assert_bad_input(r, "the grid has 2,000,000 runs (more than 100,000)", "--yes")
    assert time.monotonic() - started < 5
    assert_bad_input(cli("lab", "activations", "--seeds", "200000", "--out", tmp_path / "lab"), "--yes")


def test_yes_goes_on(cli, write_config, tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "MAX_SECONDS", 0)
    config = write_config(TINY)
    assert_bad_input(cli("run", config, "--out", tmp_path / "o"), "more than under a second", "--yes")
    r = cli("run", config, "--out", tmp_path / "o", "--yes")
    assert r.code == 0, r.err
    assert (tmp_path / "o" / "runs.csv").read_text().count("\n") == 3


def test_the_estimate_grows_with_runs_epochs_and_width():
    base = config_from_dict({"seeds": 4, "train": {"epochs": 100}})
    e = budget.estimate_all([base], ["population"])
    assert (e.runs, e.model_epochs, e.widest) == (4, 400, 32)
    assert e.seconds == pytest.approx(400 * budget.POPULATION_SECONDS)
    wider = budget.estimate_all([config_from_dict({"seeds": 4, "train": {"epochs": 100},
                                                   "model": {"hidden": [64, 64]}})], ["population"])
    assert wider.seconds > 10 * e.seconds and wider.memory > e.memory
    longer = budget.estimate_all([config_from_dict({"seeds": 4, "train": {"epochs": 10_000}})], ["population"])
    assert longer.memory - e.memory == pytest.approx(4 * 9_900 * budget.HISTORY_BYTES_PER_EPOCH)
    single = budget.estimate_all([config_from_dict({"train": {"epochs": 100}})], ["reference"])
    assert single.seconds == pytest.approx(100 * budget.REFERENCE_EPOCH_SECONDS)


def test_the_boundary_grid_goes_through_the_model_in_chunks_within_the_budget(monkeypatch):
    import trainlab.plots as plots
    from trainlab.data import make_dataset
    from trainlab.train import train

    cfg = config_from_dict({"model": {"hidden": [64]}, "train": {"epochs": 2}})
    result = train(cfg)
    data = make_dataset(cfg.data)
    model = result.model()

    def draw():
        fig, ax = plots.plt.subplots()
        plots.plot_decision_boundary(ax, model, data)
        png = plots.png_bytes(fig)
        plots.plt.close(fig)
        return png

    whole = draw()
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    monkeypatch.setattr(plots, "BOUNDARY_ELEMENTS", 64 * 1000)
    chunked = draw()
    assert max(seen) == 1000 and sum(seen) == 200 * 200
    assert chunked == whole
