"""Filesystem and storage faults: one line naming the path and the problem, exit 2, no traceback,
and nothing already stored lost."""

import errno
import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager

import pytest

from conftest import SUBPROCESS_ENV, TINY, assert_bad_input
from trainlab.store import Store


def command(*args):
    return subprocess.run([sys.executable, "-m", "trainlab", *map(str, args)], capture_output=True, text=True,
                          env=SUBPROCESS_ENV)


def assert_one_line(p, *fragments):
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@contextmanager
def read_only(path):
    """``path`` made unwritable: by its mode, or for root (whom modes do not stop) made immutable."""
    os.chmod(path, 0o555)
    immutable = False
    try:
        probe = path / ".probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("cannot make a directory read-only for this user")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)])
        os.chmod(path, 0o755)


def test_run_into_a_read_only_directory(tmp_path, write_config):
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out):
        p = command("run", write_config(TINY), "--out", out)
    assert_one_line(p, f"--out {out}: cannot write there")
    assert list(out.iterdir()) == []


def test_resume_in_a_directory_turned_read_only_keeps_the_store(tmp_path, write_config):
    out = tmp_path / "o"
    config = write_config(TINY)
    assert command("run", config, "--out", out).returncode == 0
    before = (out / "runs.sqlite").read_bytes()
    with read_only(out):
        p = command("run", config, "--out", out, "--resume", "--set", "seeds=3")
    assert_one_line(p, f"--out {out}: cannot write there")
    assert (out / "runs.sqlite").read_bytes() == before


def test_data_into_a_read_only_directory(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out):
        p = command("data", "moons", "--out", out / "m.csv")
    assert_one_line(p, f"--out {out / 'm.csv'}: cannot write the CSV")


def test_lrfind_checks_it_can_write_its_plot_before_training(tmp_path, write_config, monkeypatch, cli):
    import trainlab.lrfind

    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out):
        p = command("lrfind", write_config(TINY), "--out", out / "lr.png")
        assert_one_line(p, f"--out {out / 'lr.png'}: cannot write the plot there")
        # before training: the sweep is never started
        monkeypatch.setattr(trainlab.lrfind, "lr_range_test", lambda *a, **k: pytest.fail("trained first"))
        assert_bad_input(cli("lrfind", write_config(TINY), "--out", out / "lr.png"), "cannot write the plot")
    assert_bad_input(cli("lrfind", write_config(TINY), "--out", tmp_path), "is a directory")


def test_data_creates_a_missing_parent_and_refuses_a_file_as_one(cli, tmp_path):
    r = cli("data", "moons", "--out", tmp_path / "new" / "m.csv")
    assert r.code == 0, r.err
    assert (tmp_path / "new" / "m.csv").read_text().startswith("x1,x2,y")
    (tmp_path / "afile").write_text("")
    assert_bad_input(cli("data", "moons", "--out", tmp_path / "afile" / "sub"), "afile is a file, not a directory")


def test_run_out_below_a_file(cli, write_config, tmp_path):
    (tmp_path / "afile").write_text("mine")
    r = cli("run", write_config(TINY), "--out", tmp_path / "afile" / "sub")
    assert_bad_input(r, "afile/sub", "Not a directory")
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_corrupt_store(cli, write_config, tmp_path, command):
    config = write_config(TINY)
    out = tmp_path / "o"
    assert cli("run", config, "--out", out).code == 0
    (out / "runs.sqlite").write_bytes(b"not a database at all" * 400)
    for name in ("runs.sqlite-wal", "runs.sqlite-shm"):
        (out / name).unlink(missing_ok=True)
    r = cli("run", config, "--out", out, "--resume") if command == "run" else cli("report", out)
    assert_bad_input(r, "runs.sqlite: not a trainlab run store", "not a database")


def test_a_store_locked_by_another_program(cli, write_config, tmp_path, monkeypatch):
    import trainlab.store

    config = write_config(TINY)
    out = tmp_path / "o"
    assert cli("run", config, "--out", out).code == 0
    holder = sqlite3.connect(out / "runs.sqlite")
    holder.execute("BEGIN EXCLUSIVE")  # as a program writing to it would
    connect = sqlite3.connect
    monkeypatch.setattr(trainlab.store.sqlite3, "connect", lambda path, timeout: connect(path, timeout=0.1))
    try:
        r = cli("run", config, "--out", out, "--resume", "--set", "seeds=3")
    finally:
        holder.rollback()
        holder.close()
    assert_bad_input(r, "runs.sqlite", "database is locked")
    monkeypatch.undo()
    with Store(out) as store:
        assert len(store.done_ids()) == 2


def test_disk_full_after_training_keeps_the_stored_runs(cli, write_config, tmp_path, monkeypatch):
    import trainlab.report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "o" / "tiny-loss.png"))

    monkeypatch.setattr(trainlab.report, "build_report", full)
    r = cli("run", write_config(TINY), "--out", tmp_path / "o")
    assert_bad_input(r, "tiny-loss.png: No space left on device", "--resume")
    with Store(tmp_path / "o") as store:
        assert len(store.done_ids()) == 2


def test_disk_full_while_storing(cli, write_config, tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "save", full)
    r = cli("run", write_config(TINY), "--out", tmp_path / "o")
    assert_bad_input(r, f"{tmp_path / 'o' / 'runs.sqlite'}: database or disk is full")


@pytest.mark.parametrize("path", ["/dev/zero", "DIR", "FIFO", "HUGE"])
def test_a_csv_path_that_is_not_a_readable_file(cli, write_config, tmp_path, path):
    if path == "DIR":
        path = str(tmp_path)
    elif path == "FIFO":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif path == "HUGE":
        path = str(tmp_path / "huge.csv")
        with open(path, "wb") as f:
            f.truncate(300_000_000)  # sparse: no disk used
    config = write_config(f'name = "c"\n[data]\nname = "csv"\npath = "{path}"\n')
    expected = {"/dev/zero": "not a regular file", str(tmp_path): "is a directory"}.get(
        path, "larger than the 200 MB" if path.endswith("huge.csv") else "not a regular file")
    assert_bad_input(cli("run", config, "--out", tmp_path / "o"), path, expected)
    assert not (tmp_path / "o").exists()
