"""runner.run: expand, train, store as the runs come, export, report."""

from __future__ import annotations

from trainlab.config import config_from_dict


def test_a_sweep_past_the_memory_kept_for_the_report_reads_the_rest_from_the_store(tmp_path, monkeypatch):
    import trainlab.runner as runner

    cfg = config_from_dict({"seeds": 6, "data": {"n_samples": 120}, "train": {"epochs": 4, "batch_size": 16},
                            "grid": {"model.hidden": [[4], [6]]}})  # two populations: two chunks
    whole = runner.run(cfg, out=tmp_path / "all")
    monkeypatch.setattr(runner, "KEEP_HISTORIES_BYTES", 1)  # keeps the first chunk only
    part = runner.run(cfg, out=tmp_path / "part")
    assert (tmp_path / "all" / "history.csv").read_text() == (tmp_path / "part" / "history.csv").read_text()
    assert whole.finding(cfg.experiment_name) == part.finding(cfg.experiment_name)
