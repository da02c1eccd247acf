"""The run store: what it writes is what it reads back (runs, histories, weights), and the CSV exports."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from trainlab.config import config_from_dict, expand
from trainlab.data import DataCache
from trainlab.history import HISTORY_COLUMNS, histories
from trainlab.population import train_population
from trainlab.store import Store, _pack, _unpack, number_text


def test_the_store_writes_a_batch_as_it_writes_its_runs(tmp_path):
    cfg = config_from_dict({"seeds": 3, "data": {"n_samples": 120, "split": [0.6, 0.2, 0.2]},
                            "train": {"epochs": 4, "batch_size": 16},
                            "grid": {"optim.lr": [0.05, 1e6]}})  # the second diverges: NaN in history
    specs = expand(cfg)
    batch = train_population(specs, DataCache()(cfg))
    assert "diverged" in {r.status for r in batch}
    batch.history[0, 1, 5] = math.nan  # SQLite keeps NaN as NULL: it must come back as nan
    batch.history[0, 2, 5] = math.inf
    positions = {s.run_id: i for i, s in enumerate(specs)}
    for name, results in (("batch", batch), ("runs", list(batch))):
        (tmp_path / name).mkdir()
        with Store(tmp_path / name) as store:
            store.add_experiment(cfg.experiment_name, "", list(cfg.grid))
            store.save(results, positions)
            store.export_csv(tmp_path / name)
    for f in ("runs.csv", "history.csv"):
        assert (tmp_path / "batch" / f).read_text() == (tmp_path / "runs" / f).read_text()
    text = (tmp_path / "batch" / "history.csv").read_text()
    assert "0.05/seed=0,2," in text and ",nan\n" in text and ",inf" in text
    with Store(tmp_path / "batch") as store:
        for r in batch:
            params = store.params(r.spec.run_id)
            for name, value in r.params.items():
                np.testing.assert_array_equal(params[name], value)


def test_packed_params_are_safetensors_and_npz_archives_of_older_stores_still_read():
    params = {"0.weight": np.arange(6, dtype=np.float32).reshape(3, 2), "0.bias": np.ones(3),
              "transposed": np.arange(6, dtype=np.float64).reshape(2, 3).T, "empty": np.zeros((0, 4), dtype=np.float32)}
    from safetensors.numpy import load

    for blob in (_pack(params), npz(params)):
        back = _unpack(blob)
        assert back.keys() == params.keys()
        for name, value in params.items():
            assert back[name].dtype == value.dtype
            np.testing.assert_array_equal(back[name], value)
    assert load(_pack(params)).keys() == params.keys()  # what any safetensors reader reads


def npz(params):
    buffer = io.BytesIO()
    np.savez(buffer, **params)
    return buffer.getvalue()


def test_histories_in_memory_are_what_the_store_reads_back(tmp_path):
    """The report takes the runs just trained from memory (histories), not from the store."""

    cfg = config_from_dict({"seeds": 2, "data": {"n_samples": 120}, "train": {"epochs": 5, "batch_size": 16},
                            "grid": {"optim.lr": [0.05, 1e6]}})  # NaN in the diverged runs' history
    specs = expand(cfg)
    batch = train_population(specs, DataCache()(cfg))
    reference = list(batch)  # as RunResults, the reference engine's form
    with Store(tmp_path) as store:
        store.add_experiment(cfg.experiment_name, "", list(cfg.grid))
        store.save(batch, {s.run_id: i for i, s in enumerate(specs)})
        runs = store.runs()
        stored = store.curves(runs)
        for known in (histories(batch), histories(reference)):
            assert known.keys() == {s.run_id for s in specs}
            from_memory = store.curves(runs, known)
            assert from_memory.keys() == stored.keys()
            for group, runs_of_group in stored.items():
                for a, b in zip(runs_of_group, from_memory[group], strict=True):
                    assert a.keys() == b.keys()
                    for column in a:
                        np.testing.assert_array_equal(a[column], b[column])
                        assert a[column].dtype == b[column].dtype


def test_history_csv_reads_back_as_the_stored_floats(tmp_path):
    # run ids with a comma (two grid keys) are quoted; a diverged run's NaN is written as nan
    cfg = config_from_dict({"name": "g", "seeds": 2, "data": {"n_samples": 60}, "train": {"epochs": 4},
                            "grid": {"model.activation": ["relu", "tanh"], "optim.lr": [0.1, 1e30]}})
    specs = expand(cfg)
    with Store(tmp_path) as store:
        store.add_experiment(cfg.experiment_name, "", list(cfg.grid))
        batch = train_population(specs, DataCache()(cfg))
        batch.history[0, 0, :3] = [1e-05, -math.inf, math.inf]  # small numbers and infinities too
        store.save(batch, {s.run_id: i for i, s in enumerate(specs)})
        from_store = b"".join(store.history_csv()).decode()
        from_memory = b"".join(store.history_csv(known=histories(batch))).decode()
        expected = [["run_id", "epoch", *HISTORY_COLUMNS]]
        for s in specs:
            h = store.history(s.run_id)
            expected += zip([s.run_id] * len(h["epoch"]), *(h[c].tolist() for c in ["epoch", *HISTORY_COLUMNS]))
    assert any(math.isnan(v) for v in batch.history.ravel())
    assert '"g/activation=relu,lr=0.1/seed=0",1,0.00001,-inf,inf,' in from_store
    assert from_store == from_memory
    assert from_store.endswith("\r\n") and from_store.count("\n") == from_store.count("\r\n") == len(expected)
    rows = list(csv.reader(io.StringIO(from_store)))
    assert rows[0] == expected[0]
    read = [(r[0], int(r[1]), *map(float, r[2:])) for r in rows[1:]]
    assert len(read) == len(expected) - 1
    for got, want in zip(read, expected[1:]):  # every float as stored, bit for bit (NaN as NaN)
        assert got[:2] == want[:2]
        np.testing.assert_array_equal(np.array(got[2:]), np.array(want[2:], dtype=float))
    # a run without epochs has no rows (and does not swallow the next run's first line), from
    # memory or from the store
    empty = {c: np.array([]) for c in ["epoch", *HISTORY_COLUMNS]}
    with Store(tmp_path) as store:
        without_first = b"".join(store.history_csv(known={specs[0].run_id: empty})).decode()
        store.db.execute("DELETE FROM history WHERE run_id = ?", (specs[0].run_id,))
        assert b"".join(store.history_csv()).decode() == without_first
    assert without_first.splitlines() == [line for line in from_store.splitlines()
                                         if not line.startswith(f'"{specs[0].run_id}"')]
    assert number_text(np.float64(1e-05)) == number_text(1e-05) == b"0.00001"  # numpy floats too


def test_a_store_from_before_metrics_gains_their_columns_and_keeps_its_runs(tmp_path):
    import sqlite3

    from trainlab.metrics import SUMMARY_METRICS

    cfg = config_from_dict({"seeds": 2, "data": {"n_samples": 100}, "train": {"epochs": 2}})
    specs = expand(cfg)
    batch = train_population(specs, DataCache()(cfg))
    positions = {s.run_id: i for i, s in enumerate(specs)}
    with Store(tmp_path) as store:
        store.add_experiment(cfg.experiment_name, "", [])
        store.save(batch.take(np.array([0])), positions)
    db = sqlite3.connect(tmp_path / "runs.sqlite")  # the runs table as it was before runs had metrics
    for column in ("metrics", *SUMMARY_METRICS):
        db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    db.commit()
    db.close()
    with Store(tmp_path) as store:
        store.save(batch.take(np.array([1])), positions)  # a resumed run, stored with its metrics
        old, new = store.runs()
        assert old["val_macro_f1"] is None and store.metrics(old["run_id"]) is None
        assert new["val_macro_f1"] == batch[1].metrics["val"]["macro_f1"]
        assert store.metrics(new["run_id"]) == batch[1].metrics
        store.export_csv(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert [r["val_macro_f1"] == "" for r in rows] == [True, False]


def test_history_is_stored_whole_where_sqlite_takes_only_999_values_a_statement(tmp_path, monkeypatch):
    """SQLite before 3.32 (Ubuntu 20.04's, say) allows 999 values a statement: fewer rows per INSERT."""
    import sqlite3

    real_connect = sqlite3.connect

    def old_sqlite(*args, **kwargs):
        db = real_connect(*args, **kwargs)
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        return db

    monkeypatch.setattr(sqlite3, "connect", old_sqlite)
    cfg = config_from_dict({"seeds": 3, "data": {"n_samples": 120}, "train": {"epochs": 150, "batch_size": 32}})
    from trainlab.runner import run

    run(cfg, out=tmp_path / "o", plots=False)
    with Store(tmp_path / "o") as store:
        runs = store.runs()
        assert [len(store.history(r["run_id"])["train_loss"]) for r in runs] == [150] * 3
