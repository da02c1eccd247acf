"""``--executor ray``: the same chunks as Ray tasks give the same runs.csv as the local executor, for a
grid and for the searches that judge their trials while they train."""

from __future__ import annotations

import csv

import pytest

ray = pytest.importorskip("ray", reason="the ray extra: pip install 'trainlab[ray]'")

CONFIG = """name = "ray-sweep"
seeds = 3
[data]
n_samples = 200
[optim]
name = "adam"
lr = 0.01
[train]
epochs = 5
[grid]
"model.activation" = ["relu", "tanh"]
"optim.weight_decay" = [0.0, 0.001]
"""


def rows_without_seconds(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_ray_executor_gives_the_same_runs_as_local(cli, write_config, tmp_path):
    config = write_config(CONFIG)
    # small chunks, so several Ray tasks run side by side
    assert cli("run", config, "--max-memory", "40MiB", "--out", tmp_path / "local").code == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = cli("run", config, "--max-memory", "40MiB", "--executor", "ray", "--out", tmp_path / "ray")
    finally:
        ray.shutdown()
    assert result.code == 0, result.err
    local, on_ray = rows_without_seconds(tmp_path / "local" / "runs.csv"), rows_without_seconds(tmp_path / "ray" / "runs.csv")
    assert len(local) == 12
    assert on_ray == local
    assert (tmp_path / "ray" / "history.csv").read_text() == (tmp_path / "local" / "history.csv").read_text()


SEARCH = """name = "ray-search"
seeds = 2
[data]
n_samples = 200
[train]
epochs = 9
[grid]
"model.hidden" = [[8], [16]]
[search]
method = "%s"
trials = 9
min_epochs = 1
interval = 3
[search.space]
"optim.lr" = { log_uniform = [1e-3, 1] }
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["halving", "pbt"])
def test_ray_executor_searches_each_population_as_the_local_run_does(cli, write_config, tmp_path, method):
    # two widths: two populations, each searched by its own controller in its own Ray task
    config = write_config(SEARCH % method)
    assert cli("run", config, "--out", tmp_path / "local").code == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = cli("run", config, "--executor", "ray", "--out", tmp_path / "ray")
    finally:
        ray.shutdown()
    assert result.code == 0, result.err
    local, on_ray = rows_without_seconds(tmp_path / "local" / "runs.csv"), rows_without_seconds(tmp_path / "ray" / "runs.csv")
    assert len(local) == 2 * 9 * 2
    if method == "halving":
        assert sum(row["status"] == "pruned" for row in local) == 2 * 8 * 2
    assert on_ray == local
    assert (tmp_path / "ray" / "history.csv").read_text() == (tmp_path / "local" / "history.csv").read_text()
