"""``[search]``: sampled trials stored like runs; halving prunes, PBT exploits; ``trainlab best``."""

from __future__ import annotations

import csv
import math
import tomllib

import numpy as np
import pytest

from conftest import assert_bad_input
from trainlab.config import config_from_dict, expand

SEARCH = """
name = "rs"
[data]
n_samples = 200
[train]
epochs = 6
[search]
method = "random"
trials = 10
seed = 3
[search.space]
"optim.lr" = { log_uniform = [1e-3, 1] }
"optim.momentum" = { uniform = [0.0, 0.9] }
"model.hidden" = { choice = [[8], [16, 16]] }
"data.n_samples" = { int = [150, 200] }
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def search_config(**search):
    raw = tomllib.loads(SEARCH)
    raw["search"].update(search)
    return config_from_dict(raw)


def test_trials_are_drawn_from_their_distributions_reproducibly():
    specs = expand(search_config(trials=200))
    again = expand(search_config(trials=200))
    other = expand(search_config(trials=200, seed=4))
    assert [s.grid_values for s in specs] == [s.grid_values for s in again]
    assert [s.grid_values for s in specs] != [s.grid_values for s in other]
    lrs = [s.config.optim.lr for s in specs]
    assert all(1e-3 <= lr <= 1 for lr in lrs)
    # log-uniform: about half the draws below the geometric middle of the range
    assert 0.35 < sum(lr < math.sqrt(1e-3) for lr in lrs) / len(lrs) < 0.65
    assert all(0 <= s.config.optim.momentum <= 0.9 for s in specs)
    assert {tuple(s.config.model.hidden) for s in specs} == {(8,), (16, 16)}
    sizes = [s.config.data.n_samples for s in specs]
    assert all(isinstance(n, int) and 150 <= n <= 200 for n in sizes) and len(set(sizes)) > 10


def test_each_trial_runs_every_seed():
    cfg = config_from_dict({**tomllib.loads(SEARCH), "seeds": 2})
    specs = expand(cfg)
    assert len(specs) == 2 * cfg.search.trials
    assert specs[0].run_id == "rs/trial=0/seed=0" and specs[1].run_id == "rs/trial=0/seed=1"
    assert specs[0].grid_values == specs[1].grid_values


def test_a_seeded_search_run_is_reproducible_and_stores_the_sampled_values(cli, write_config, tmp_path):
    config = write_config(SEARCH)
    assert cli("run", config, "--out", tmp_path / "a").code == 0
    assert cli("run", config, "--out", tmp_path / "b").code == 0
    rows = read_csv(tmp_path / "a" / "runs.csv")
    assert without_seconds(rows) == without_seconds(read_csv(tmp_path / "b" / "runs.csv"))
    assert len(rows) == 10
    assert {"optim.lr", "optim.momentum", "model.hidden", "data.n_samples"} <= set(rows[0])
    assert len({r["optim.lr"] for r in rows}) == 10
    assert all(r["status"] == "ok" and r["epochs_run"] == "6" for r in rows)


@pytest.mark.parametrize("search, fragments", [
    ({"space": {"optim.lr": {"log_uniform": [0, 1]}}}, ["search.space", "optim.lr", "0 < low"]),
    ({"space": {"optim.lr": {"uniform": [1, 0.5]}}}, ["optim.lr", "low < high"]),
    ({"space": {"model.hidden": {"int": [1.5, 3]}}}, ["model.hidden", "integers"]),
    ({"space": {"optim.lr": {"normal": [0, 1]}}}, ["optim.lr", "log_uniform"]),
    ({"space": {"optim.name": {"choice": []}}}, ["optim.name", "at least one value"]),
    ({"space": {"optim.lr": {"uniform": [-1, 1]}}}, ["search.space.optim.lr", "greater than 0"]),
    ({"space": {"optim.nmae": {"choice": [1]}}}, ["optim.nmae", "unknown key"]),
    ({"space": {}}, ["search.space", "at least one key"]),
    ({"method": "grid"}, ["search.method"]),
    ({"trials": 0}, ["search.trials"]),
    ({"method": "pbt"}, ["model.hidden", "optim.*"]),
    ({"method": "halving", "sampler": "tpe"}, ["search.sampler = 'tpe'", "method = 'random'"]),
    ({"sampler": "bayes"}, ["search.sampler"]),
])
def test_a_bad_search_section_is_one_line_naming_the_key(cli, write_config, tmp_path, search, fragments):
    import tomli_w

    raw = tomllib.loads(SEARCH)
    raw["search"].update(search)
    config = write_config(tomli_w.dumps(raw))
    assert_bad_input(cli("run", config, "--out", tmp_path / "o"), *fragments)


def test_a_grid_beside_a_search_runs_the_same_trials_at_each_grid_point(cli, write_config, tmp_path):
    cfg = config_from_dict({**tomllib.loads(SEARCH), "grid": {"model.activation": ["relu", "tanh"]}})
    specs = expand(cfg)
    assert len(specs) == 2 * 10
    assert specs[0].run_id == "rs/activation=relu,trial=0/seed=0" and specs[0].config.model.activation == "relu"
    relu, tanh = specs[:10], specs[10:]
    assert [s.config.optim.lr for s in relu] == [s.config.optim.lr for s in tanh]
    assert all(s.config.model.activation == "tanh" for s in tanh)
    assert cfg.varied_keys[0] == "model.activation"

    clash = write_config(SEARCH + '[grid]\n"optim.lr" = [0.1, 0.01]\n')
    assert_bad_input(cli("run", clash, "--out", tmp_path / "o"), "search.space.optim.lr", "also a [grid] key")


HALVING = """
name = "halving"
[data]
n_samples = 600
[train]
epochs = 60
[search]
method = "halving"
trials = 512
seed = 0
min_epochs = 4
eta = 3
[search.space]
"optim.lr" = { log_uniform = [1e-4, 1] }
"""


def best_final(runs):
    return min(r["final_val_loss"] for r in runs if r["status"] not in ("pruned", "diverged"))


@pytest.mark.slow
def test_halving_finds_a_top_five_percent_learning_rate_for_a_third_of_the_grids_epochs(tmp_path):
    import numpy as np

    from trainlab.runner import run

    cfg = config_from_dict(tomllib.loads(HALVING))
    search = run(cfg, out=tmp_path / "halving", plots=False).runs()
    grid_cfg = config_from_dict({**tomllib.loads(HALVING.split("[search]")[0]),
                                 "grid": {"optim.lr": np.geomspace(1e-4, 1, 512).tolist()}})
    grid = run(grid_cfg, out=tmp_path / "grid", plots=False).runs()

    grid_losses = np.sort([r["final_val_loss"] for r in grid])
    assert best_final(search) <= grid_losses[int(0.05 * len(grid_losses))]
    spent = sum(r["epochs_run"] for r in search) / sum(r["epochs_run"] for r in grid)
    assert spent <= 0.35, spent


def test_halving_prunes_at_each_rung_and_keeps_the_history_up_to_there(tmp_path):
    from trainlab.runner import run
    from trainlab.config import rungs

    raw = tomllib.loads(HALVING)
    raw["train"]["epochs"] = 12
    raw["search"].update(trials=27, min_epochs=1)
    raw["seeds"] = 2
    cfg = config_from_dict(raw)
    assert rungs(cfg.search, 12) == [1, 3, 9]
    results = run(cfg, out=tmp_path / "o", plots=False)
    runs = results.runs()
    by_trial = {}
    for r in runs:
        by_trial.setdefault(r["group"], []).append(r)
    # the seeds of a trial are judged together: pruned (or kept) at the same rung
    stops = [{(r["status"], r["epochs_run"]) for r in rs} for rs in by_trial.values()]
    assert all(len(s) == 1 for s in stops)
    counts = {}
    for (s,) in stops:
        counts[s] = counts.get(s, 0) + 1
    assert counts == {("pruned", 1): 18, ("pruned", 3): 6, ("pruned", 9): 2, ("ok", 12): 1}
    pruned = next(r for r in runs if r["status"] == "pruned" and r["epochs_run"] == 3)
    assert len(results.history(pruned["run_id"])["val_loss"]) == 3
    rows = read_csv(tmp_path / "o" / "runs.csv")
    assert sum(r["status"] == "pruned" for r in rows) == 2 * 26
    # the kept trial had the lowest mean val loss of the trials alive at the last rung
    last = [rs for rs in by_trial.values() if rs[0]["epochs_run"] >= 9]
    mean_at_9 = {rs[0]["group"]: sum(results.history(r["run_id"])["val_loss"][8] for r in rs) for rs in last}
    assert min(mean_at_9, key=mean_at_9.get) == next(rs[0]["group"] for rs in last if rs[0]["status"] == "ok")


SMALL_HALVING = """
name = "small-halving"
[data]
n_samples = 200
[train]
epochs = 9
[search]
method = "halving"
trials = 9
min_epochs = 1
[search.space]
"optim.lr" = { log_uniform = [1e-3, 1] }
"optim.momentum" = { uniform = [0.0, 0.9] }
"""


def test_best_prints_the_best_trial_as_a_config_that_runs_it_again(cli, write_config, tmp_path):
    out = tmp_path / "search"
    ran = cli("run", write_config(SMALL_HALVING), "--out", out)
    assert ran.code == 0 and "8 more trials were pruned" in ran.out
    rows = read_csv(out / "runs.csv")
    finished = [r for r in rows if r["status"] == "ok"]
    assert len(finished) == 1 and sum(r["status"] == "pruned" for r in rows) == 8
    result = cli("best", out)
    assert result.code == 0
    config = tomllib.loads(result.out)  # comments and a config: valid TOML
    assert "search" not in config
    assert config["optim"]["lr"] == float(finished[0]["optim.lr"])
    assert config["optim"]["momentum"] == float(finished[0]["optim.momentum"])
    assert cli("run", write_config(result.out, "best.toml"), "--out", tmp_path / "again").code == 0
    again = read_csv(tmp_path / "again" / "runs.csv")
    assert float(again[0]["final_val_loss"]) == pytest.approx(float(finished[0]["final_val_loss"]), rel=1e-6)

    report = (out / "report.html").read_text()
    assert "Successive halving" in report and "epoch 1: 9 → 3" in report
    assert (out / "small-halving-search.png").stat().st_size > 0
    assert (out / "small-halving-rungs.png").stat().st_size > 0


def test_best_of_a_directory_without_a_search_is_one_line(cli, write_config, tmp_path):
    config = write_config('name = "plain"\n[data]\nn_samples = 100\n[train]\nepochs = 2\n')
    assert cli("run", config, "--out", tmp_path / "o").code == 0
    assert_bad_input(cli("best", tmp_path / "o"), "no search here")
    assert_bad_input(cli("best", tmp_path / "missing"), "no such directory")


PBT = """
name = "pbt"
[data]
name = "%s"
n_samples = 600
[model]
hidden = [32, 32]
[train]
epochs = 60
[search]
method = "%s"
trials = 16
seed = %d
interval = 5
[search.space]
"optim.lr" = { log_uniform = [1e-3, 1] }
"""


def test_pbt_losers_continue_from_a_winners_weights_and_optimizer_state(tmp_path):
    from trainlab.runner import run

    raw = tomllib.loads(PBT % ("moons", "pbt", 0))
    raw["train"]["epochs"] = 4
    raw["optim"] = {"name": "momentum"}
    raw["search"].update(trials=4, interval=3, quantile=0.5, perturb=[1.0])
    results = run(config_from_dict(raw), out=tmp_path / "o", plots=False)
    histories = {r["group"]: results.history(r["run_id"]) for r in results.runs()}
    ranked_at_3 = sorted(histories, key=lambda g: histories[g]["val_loss"][2])
    winners, losers = ranked_at_3[:2], ranked_at_3[2:]
    for loser in losers:
        # every trial trains from seed 0 (the same data order), so a copy with the same lr and momentum
        # buffer goes on exactly as its winner does
        epoch_4 = histories[loser]["val_loss"][3]
        assert any(epoch_4 == pytest.approx(histories[w]["val_loss"][3], rel=1e-9) for w in winners)
        assert not any(epoch_4 == pytest.approx(h["val_loss"][3], rel=1e-9) for g, h in histories.items()
                       if g != loser and g not in winners)
    # runs.csv shows the values each trial ended with: a loser's are its winner's
    lrs = {r["group"]: r["grid"]["optim.lr"] for r in results.runs()}
    assert all(lrs[loser] in {lrs[w] for w in winners} for loser in losers)
    assert all(histories[loser]["lr"][3] == lrs[loser] for loser in losers)


@pytest.mark.slow
def test_pbt_beats_as_many_independent_random_trials_on_spiral(tmp_path):
    from trainlab.runner import run
    from trainlab.findings import ranked

    wins, gains = 0, []
    for seed in range(5):
        best = {}
        for method in ("random", "pbt"):
            cfg = config_from_dict(tomllib.loads(PBT % ("spiral", method, seed)))
            best[method] = ranked(run(cfg, out=tmp_path / f"{method}-{seed}", plots=False).runs())[0].score()
        wins += best["pbt"] < best["random"]
        gains.append(best["random"] - best["pbt"])
    assert wins >= 4 and sum(gains) > 0, gains


def test_halving_needs_the_population_engine(cli, write_config, tmp_path):
    config = write_config(SMALL_HALVING)
    assert_bad_input(cli("run", config, "--out", tmp_path / "o", "--engine", "reference"),
                     "search.method = 'halving'", "--engine auto or population")


def test_pruned_trials_have_no_final_value_in_the_summary(tmp_path):
    from trainlab.runner import run

    results = run(config_from_dict(tomllib.loads(SMALL_HALVING)), out=tmp_path / "o", plots=False)
    rows = results.summary().rows
    pruned = [r for r in rows if r["pruned"]]
    assert len(pruned) == 8 and all(r["final_val_loss"].n == 0 for r in pruned)
    assert "(1 pruned)" in str(results.summary()) and "n/a" in str(results.summary())
    assert "Successive halving" in results.finding("small-halving")
    assert set(results.figures("small-halving")) == {"search", "rungs"}


TPE = """
name = "tpe"
[data]
n_samples = 300
[train]
epochs = 20
[search]
sampler = "tpe"
trials = 48
wave = 8
seed = 0
[search.space]
"optim.lr" = { log_uniform = [1e-4, 1] }
"model.hidden" = { choice = [[4], [16]] }
"""


@pytest.mark.slow  # needs the optuna extra, which `make test-slow` installs
def test_tpe_waves_are_reproducible_and_sample_where_earlier_waves_did_well(tmp_path):
    pytest.importorskip("optuna", reason="the optuna extra: pip install 'trainlab[optuna]'")
    from trainlab.runner import run

    cfg = config_from_dict(tomllib.loads(TPE))
    runs = run(cfg, out=tmp_path / "a", plots=False).runs()
    again = run(cfg, out=tmp_path / "b", plots=False).runs()
    assert [r["grid"] for r in runs] == [r["grid"] for r in again]
    assert [r["final_val_loss"] for r in runs] == [r["final_val_loss"] for r in again]
    assert all(1e-4 <= r["grid"]["optim.lr"] <= 1 and r["grid"]["model.hidden"] in ([4], [16]) for r in runs)
    # after the first wave TPE samples where the earlier waves did well: its later trials end lower,
    # on average, than as many trials drawn at random
    raw = tomllib.loads(TPE)
    raw["search"]["sampler"] = "random"
    drawn = run(config_from_dict(raw), out=tmp_path / "random", plots=False).runs()
    later = np.mean([r["final_val_loss"] for r in runs[8:]])  # runs are in trial order, wave by wave
    assert later < np.mean([r["final_val_loss"] for r in drawn[8:]])


def test_tl_train_refuses_a_search_and_at_gives_one_setting_of_it():
    import trainlab as tl

    cfg = config_from_dict(tomllib.loads(SEARCH))
    with pytest.raises(tl.BadInput, match="search"):
        tl.train(cfg)
    one = cfg.at({"optim.lr": 0.1})
    assert one.search is None and one.optim.lr == 0.1
