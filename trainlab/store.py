"""The run store: one SQLite file per output directory, the source of truth for results and resume.

Runs are written a chunk at a time, each chunk in one transaction (WAL journal), so a crash or
a kill loses at most the chunk in flight and never leaves a half-written run behind.
``runs.csv`` and ``history.csv`` are exports of this file.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import orjson
import safetensors.numpy

from trainlab.config import RunSpec
from trainlab.errors import BadInput
from trainlab.history import HISTORY_COLUMNS, SUMMARY_COLUMNS, History, RunBatch, RunResult
from trainlab.metrics import SUMMARY_METRICS, RunMetrics

STORE_NAME = "runs.sqlite"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS experiments (
    experiment TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    config_toml TEXT NOT NULL,
    grid_keys TEXT NOT NULL,
    data_fingerprint TEXT  -- outdir.data_fingerprint of the data its runs trained on
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    position INTEGER NOT NULL,
    grp TEXT NOT NULL,
    seed INTEGER NOT NULL,
    grid TEXT NOT NULL,
    {", ".join(f"{c} {'TEXT' if c == 'status' else 'REAL'}" for c in SUMMARY_COLUMNS)},
    params BLOB,
    metrics TEXT  -- JSON: the run's trainlab.metrics (confusion matrices, per-class scores, ...)
);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    {", ".join(f"{c} REAL" for c in HISTORY_COLUMNS)},
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;
"""


HISTORY_HEADER = ["run_id", "epoch", *HISTORY_COLUMNS]
RUN_COLUMNS = ("run_id", "experiment", "position", "grp", "seed", "grid", *SUMMARY_COLUMNS, "params", "metrics")


# History rows go in ROWS_PER_INSERT to a statement: SQLite releases Python's GIL once a statement,
# and a statement a row would take it back once a row, each time queueing behind the engine's
# threads (measured: benchmarks/README.md, eleventh round).
ROWS_PER_INSERT = 200


def history_values(run_ids: np.ndarray, epochs: np.ndarray, values: np.ndarray) -> list:
    """History rows (run_id, epoch, *HISTORY_COLUMNS), one per row of ``values``, as one flat list
    of Python values, what the INSERTs bind: numpy converts them, not a Python loop over millions."""
    table = np.empty((len(values), len(HISTORY_HEADER)), dtype=object)
    table[:, 0], table[:, 1], table[:, 2:] = run_ids, epochs, values
    return table.ravel().tolist()


@functools.lru_cache(maxsize=4)
def _insert_history(rows: int) -> str:
    row = f"({', '.join('?' * len(HISTORY_HEADER))})"
    return f"INSERT INTO history VALUES {', '.join([row] * rows)}"


class Store:
    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / STORE_NAME
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA page_size=65536")  # for a new file: 20 % faster to fill than 4 KiB
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            # a store written before data fingerprints, or before runs had metrics, gains their columns
            for table, column, kind in [("experiments", "data_fingerprint", "TEXT"),
                                        *(("runs", c, "REAL") for c in SUMMARY_METRICS), ("runs", "metrics", "TEXT")]:
                if column not in {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except sqlite3.OperationalError as e:  # locked, or cannot be opened
            raise BadInput(f"{self.path}: cannot use the run store ({e})") from None
        except sqlite3.DatabaseError as e:  # corrupt, or some other file
            raise BadInput(f"{self.path}: not a trainlab run store ({e})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def add_experiment(self, experiment: str, config_toml: str, grid_keys: list[str],
                       data_fingerprint: str | None = None) -> None:
        with self.db:
            row = self.db.execute("SELECT COUNT(*) FROM experiments").fetchone()
            self.db.execute(
                "INSERT INTO experiments VALUES (?, ?, ?, ?, ?) ON CONFLICT(experiment) DO UPDATE SET "
                "config_toml = excluded.config_toml, grid_keys = excluded.grid_keys, "
                "data_fingerprint = excluded.data_fingerprint",
                (experiment, row[0], config_toml, json.dumps(grid_keys), data_fingerprint),
            )

    def save(self, results: Iterable[RunResult], positions: dict[str, int]) -> None:
        """Write finished runs, all or nothing."""
        if isinstance(results, RunBatch):  # from its arrays, without a RunResult per run
            specs, summary, run_metrics = results.specs, results.summaries(), results.metrics
            params = (results.state_dict(row) for row in results.params)
            ids = np.array([s.run_id for s in specs], dtype=object)
            order = np.argsort(ids, kind="stable")  # the history table's key order: 30 % quicker to insert
            ids, epochs_run = ids[order], results.epochs_run[order]
            valid = np.arange(results.history.shape[1]) < epochs_run[:, None]  # each run's epochs 1..epochs_run
            flat_history = history_values(np.repeat(ids, epochs_run), np.nonzero(valid)[1] + 1,
                                          results.history[order][valid])
        else:
            results = list(results)
            if not results:
                return
            specs, summaries = [r.spec for r in results], [r.summary() for r in results]
            summary = {c: [row[c] for row in summaries] for c in SUMMARY_COLUMNS}
            params, run_metrics = [r.params for r in results], [r.metrics for r in results]
            lengths = [r.epochs_run for r in results]
            flat_history = history_values(
                np.repeat(np.array([s.run_id for s in specs], dtype=object), lengths),
                np.concatenate([np.arange(1, n + 1) for n in lengths]),
                np.concatenate([history_table(r.history) for r in results]))
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO runs ({', '.join(RUN_COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                                (row + (_pack(p), None if m is None else json.dumps(m))
                                 for row, p, m in zip(run_rows(specs, summary, positions), params, run_metrics)))
            self.db.executemany("DELETE FROM history WHERE run_id = ?", ((s.run_id,) for s in specs))
            width = len(HISTORY_HEADER)
            # SQLite before 3.32 takes at most 999 values a statement
            per_insert = max(1, min(ROWS_PER_INSERT, self.db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
            for start in range(0, len(flat_history), per_insert * width):
                chunk = flat_history[start : start + per_insert * width]
                self.db.execute(_insert_history(len(chunk) // width), chunk)

    def set_positions(self, positions: dict[str, int]) -> None:
        """Grid order of the runs (it changes when a resumed experiment gains seeds)."""
        with self.db:
            self.db.executemany("UPDATE runs SET position = ? WHERE run_id = ?",
                                ((pos, run_id) for run_id, pos in positions.items()))

    # ------------------------------------------------------------------ reading

    def done_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT run_id FROM runs")}

    def experiments(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT experiment, config_toml, grid_keys, data_fingerprint FROM experiments ORDER BY position"
        ).fetchall()
        return [{"experiment": e, "config_toml": t, "grid_keys": json.loads(k), "data_fingerprint": f}
                for e, t, k, f in rows]

    def runs(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """One dict per run in grid order: run_id, experiment, group, seed, grid values, summary."""
        columns = ", ".join(f"r.{c}" for c in SUMMARY_COLUMNS)
        query = (f"SELECT r.run_id, r.experiment, r.grp, r.seed, r.grid, {columns} FROM runs r JOIN experiments e "
                 f"USING (experiment){' WHERE r.experiment = ?' if experiment else ''} ORDER BY e.position, r.position")
        rows = self.db.execute(query, (experiment,) if experiment else ())
        return [{"run_id": run_id, "experiment": exp, "group": grp, "seed": seed, "grid": json.loads(grid),
                 **{c: _nan_for_none(c, v) for c, v in zip(SUMMARY_COLUMNS, summary)}}
                for run_id, exp, grp, seed, grid, *summary in rows]

    def history(self, run_id: str, known: Mapping[str, History] | None = None) -> History:
        """The run's history: from ``known`` (``history.histories`` of results just stored) when it
        is there, else from SQLite (which keeps NaN as NULL, read by numpy as nan)."""
        if known and run_id in known:
            return known[run_id]
        rows = self.db.execute(
            f"SELECT epoch, {', '.join(HISTORY_COLUMNS)} FROM history WHERE run_id = ? ORDER BY epoch",
            (run_id,),
        ).fetchall()
        cols = np.array(rows, dtype=np.float64).reshape(len(rows), 1 + len(HISTORY_COLUMNS)).T
        return {"epoch": cols[0].astype(int), **dict(zip(HISTORY_COLUMNS, cols[1:]))}

    def curves(self, runs: list[dict[str, Any]], known: Mapping[str, History] | None = None
               ) -> dict[str, list[History]]:
        """``history`` of each of ``runs`` (from ``runs()``), by group in grid order."""
        groups: dict[str, list[History]] = {}
        for r in runs:
            groups.setdefault(r["group"], []).append(self.history(r["run_id"], known))
        return groups

    def metrics(self, run_id: str) -> RunMetrics | None:
        """The run's ``trainlab.metrics`` on its val and test splits (None if it has none stored)."""
        row = self.db.execute("SELECT metrics FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def params(self, run_id: str) -> dict[str, np.ndarray] | None:
        row = self.db.execute("SELECT params FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _unpack(row[0]) if row and row[0] is not None else None

    # ------------------------------------------------------------------ export

    def export_csv(self, out_dir: str | Path, known: Mapping[str, History] | None = None) -> None:
        """Write runs.csv and history.csv (each through a temporary file, so a reader never sees
        half); the histories in ``known`` (``history.histories``) are not read again."""
        grid_keys: list[str] = []
        for e in self.experiments():
            grid_keys += [k for k in e["grid_keys"] if k not in grid_keys]
        runs = self.runs()
        # the metric columns of the tasks the runs have (macro F1, or RMSE, MAE and R²)
        columns = [c for c in SUMMARY_COLUMNS if c not in SUMMARY_METRICS
                   or any(r["val_" + c.split("_", 1)[1]] is not None for r in runs)]
        header = ["run_id", "experiment", "seed", *grid_keys, *columns]
        rows = [[r["run_id"], r["experiment"], r["seed"], *(_cell(r["grid"].get(k)) for k in grid_keys),
                 *(_cell(r[c]) for c in columns)] for r in runs]
        write_atomic(Path(out_dir) / "runs.csv", (line.encode() for line in csv_lines([header, *rows])))
        write_atomic(Path(out_dir) / "history.csv", self.history_csv(known, runs))

    def history_csv(self, known: Mapping[str, History] | None = None, runs: list[dict[str, Any]] | None = None
                    ) -> Iterator[bytes]:
        """history.csv, a run at a time in grid order (of ``runs``, those of ``runs()``, if already
        read), each run's history as ``history(run_id, known)`` reads it."""
        # a query per run reads the table in its key order: quicker than one sorting all rows by grid order
        yield next(csv_lines([HISTORY_HEADER])).encode()
        for run_id in (r["run_id"] for r in (self.runs() if runs is None else runs)):
            yield history_lines(run_id, self.history(run_id, known))


def history_table(history: Mapping[str, Any]) -> np.ndarray:
    """A run's history as one array, epochs × HISTORY_COLUMNS."""
    return np.column_stack([history[c] for c in HISTORY_COLUMNS])


def history_lines(run_id: str, history: History) -> bytes:
    """A run's lines of history.csv: its id (quoted as the csv module quotes it), the epoch, then
    its HISTORY_COLUMNS, each number as ``number_text`` writes it."""
    if len(history["epoch"]) == 0:
        return b""
    # orjson formats a whole array in C (Ryu's shortest digits), ten times quicker than the floats'
    # repr; it writes null for NaN and infinities, so rows holding one are written a number at a time.
    values = np.ascontiguousarray(history_table(history), dtype=np.float64)
    rows = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].split(b"],[")
    for i in np.flatnonzero(~np.isfinite(values).all(axis=1)).tolist():
        rows[i] = b",".join(map(number_text, values[i].tolist()))
    cell = next(csv_lines([[run_id]]))[:-2].encode()
    heads = [b"%s,%d," % (cell, e) for e in history["epoch"].tolist()]
    return b"\r\n".join(map(bytes.__add__, heads, rows)) + b"\r\n"


def number_text(value: float) -> bytes:
    """A float in the CSV files: the shortest text that reads back as the same float (``1e-05`` as
    ``0.00001``), and ``nan``, ``inf``, ``-inf``, which Python, numpy and pandas read too."""
    if math.isfinite(value):
        return orjson.dumps(float(value))  # a numpy float too
    return b"nan" if math.isnan(value) else (b"inf" if value > 0 else b"-inf")


def run_rows(specs: list[RunSpec], summary: dict[str, list], positions: dict[str, int]) -> Iterator[tuple]:
    """The runs table's rows, without the weights and metrics: run id, experiment, position, group,
    seed, grid values (JSON), then ``SUMMARY_COLUMNS`` (``summary``: a list per column)."""
    grids: dict[int, str] = {}  # specs of one grid point share their grid_values
    return zip(
        (s.run_id for s in specs),
        (s.experiment for s in specs),
        (positions[s.run_id] for s in specs),
        (s.group for s in specs),
        (s.seed for s in specs),
        (grids.setdefault(id(s.grid_values), json.dumps(s.grid_values)) for s in specs),
        *(summary[c] for c in SUMMARY_COLUMNS),
    )


def write_atomic(path: Path, chunks: Iterable[bytes]) -> Path:
    """Write ``path`` whole or not at all: into ``NAME.tmp`` beside it, then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.writelines(chunks)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as the line csv.writer writes for it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for r in rows:
        writer.writerow(r)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return number_text(value).decode()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _nan_for_none(column: str, value: Any) -> Any:
    # SQLite stores NaN as NULL; test_acc and the metrics are genuinely absent without a test split
    # (and the metrics of the other task).
    if value is None and column not in ("test_acc", "status", *SUMMARY_METRICS):
        return math.nan
    if column in ("epochs_run", "best_epoch") and value is not None:
        return int(value)
    return value


def _pack(params: dict[str, np.ndarray]) -> bytes:
    """The weights in safetensors' layout, as a model file holds them (4x quicker to write than an
    .npz archive, 30x quicker to read)."""
    return safetensors.numpy.save({name: np.ascontiguousarray(w) for name, w in params.items()})


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    if blob[:4] == b"PK\x03\x04":  # an .npz archive, as stores written before safetensors hold them
        with np.load(io.BytesIO(blob)) as z:
            return {k: z[k] for k in z.files}
    return safetensors.numpy.load(blob)
