"""``trainlab export mlflow|tensorboard``: every run, read back by the tracker's own reader."""

from __future__ import annotations

import pytest

from conftest import assert_bad_input
from trainlab.runner import Results

CONFIG = """
name = "tracked"
seeds = 2
[data]
n_samples = 120
[train]
epochs = 9
[search]
method = "halving"
trials = 3
min_epochs = 3
[search.space]
"optim.lr" = { log_uniform = [1e-2, 1] }
"""


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    from trainlab.config import load_config
    from trainlab.runner import run

    path = tmp_path_factory.mktemp("tracked")
    (path / "c.toml").write_text(CONFIG)
    run(load_config(path / "c.toml"), out=path / "out")
    return path / "out"


@pytest.mark.slow  # MLflow's imports and its SQLite store's migrations: ~15 s
def test_mlflow_export_reads_back_with_mlflows_client(cli, out_dir):
    pytest.importorskip("mlflow", reason="the mlflow extra: pip install 'trainlab[mlflow]'")
    from mlflow.tracking import MlflowClient

    result = cli("export", "mlflow", out_dir)
    assert result.code == 0, result.err
    results = Results(out_dir)
    stored = {r["run_id"]: r for r in results.runs()}
    client = MlflowClient(tracking_uri=f"sqlite:///{out_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"{out_dir.name}/tracked")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "trainlab.run_id" in r.data.tags]
    assert sorted(r.data.tags["trainlab.run_id"] for r in runs) == sorted(stored)
    assert {r.data.tags["trainlab.status"] for r in runs} == {"ok", "pruned"}
    for run in runs:
        mine = stored[run.data.tags["trainlab.run_id"]]
        assert run.data.params["optim.lr"] == str(mine["grid"]["optim.lr"])
        assert run.data.params["seed"] == str(mine["seed"]) and run.data.params["train.epochs"] == "9"
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, mine["epochs_run"] + 1))
        assert [m.value for m in history] == pytest.approx(results.history(mine["run_id"])["val_loss"].tolist())
        assert run.data.metrics["final_val_loss"] == pytest.approx(mine["final_val_loss"])
    parent = next(r for r in client.search_runs([experiment.experiment_id]) if "trainlab.run_id" not in r.data.tags)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert {"figures/tracked-search.png", "figures/tracked-rungs.png"} <= artifacts
    assert_bad_input(cli("export", "mlflow", out_dir), "already has an experiment")


@pytest.mark.slow  # needs the tensorboard extra, which `make test-slow` installs
def test_tensorboard_export_reads_back_with_its_event_reader(cli, out_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra: pip install 'trainlab[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = tmp_path / "tb"
    result = cli("export", "tensorboard", out_dir, "--log-dir", log_dir)
    assert result.code == 0, result.err
    results = Results(out_dir)
    runs = results.runs()
    assert sorted({p.parent.relative_to(log_dir).as_posix() for p in log_dir.rglob("events.out.tfevents.*")
                   if p.parent != log_dir / "tracked"}) == sorted(r["run_id"] for r in runs)
    for r in runs:
        events = EventAccumulator(str(log_dir / r["run_id"]), size_guidance={"scalars": 0}).Reload()
        val_loss = events.Scalars("val_loss")
        assert [e.step for e in val_loss] == list(range(1, r["epochs_run"] + 1))
        assert [e.value for e in val_loss] == pytest.approx(results.history(r["run_id"])["val_loss"].tolist(),
                                                            rel=1e-6)
        assert events.Scalars("hparam/final_val_loss")[0].value == pytest.approx(r["final_val_loss"], rel=1e-6)
    figures = EventAccumulator(str(log_dir / "tracked"), size_guidance={"images": 0}).Reload()
    assert {"search", "rungs"} <= set(figures.Tags()["images"])
    assert_bad_input(cli("export", "tensorboard", out_dir, "--log-dir", log_dir), "not empty")
