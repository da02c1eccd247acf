"""The output directory: --force replaces only what trainlab made, one writer at a time, names that
stay inside it, and --resume refuses data that changed."""

import subprocess
import sys
import time

import pytest

from conftest import SUBPROCESS_ENV, TINY, assert_bad_input
from trainlab.outdir import LOCK_NAME

ONE_SEED = TINY.replace("seeds = 2", "seeds = 1")  # one run: the reference engine


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_force_refuses_a_directory_trainlab_did_not_make_and_touches_nothing(cli, write_config, tmp_path):
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "README.md").write_text("mine")
    (work / "src" / "code.py").write_text("x = 1")
    before = listing(work)
    r = cli("run", write_config(ONE_SEED), "--out", work, "--force")
    assert_bad_input(r, f"--out {work} --force", "trainlab did not make", "README.md", "src/")
    assert listing(work) == before
    assert (work / "README.md").read_text() == "mine"


def test_force_removes_only_trainlabs_own_files(cli, write_config, tmp_path):
    out = tmp_path / "o"
    config = write_config(ONE_SEED)
    assert cli("run", config, "--out", out).code == 0
    (out / "notes.txt").write_text("keep me")
    (out / "old-loss.png").write_bytes(b"a figure of the earlier run")
    r = cli("run", config, "--out", out, "--force", "--set", "train.epochs=3")
    assert r.code == 0, r.err
    assert (out / "notes.txt").read_text() == "keep me"
    assert not (out / "old-loss.png").exists()  # trainlab's own figure of the earlier run
    assert (out / "runs.csv").read_text().count("\n") == 2 and ",3," in (out / "runs.csv").read_text()
    assert not (out / LOCK_NAME).exists()


def test_force_replaces_an_empty_directory(cli, write_config, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert cli("run", write_config(ONE_SEED), "--out", out, "--force").code == 0
    assert (out / "runs.sqlite").exists()


def test_a_second_writer_is_refused_at_once_and_the_first_finishes(write_config, tmp_path):
    out = tmp_path / "o"
    config = write_config(TINY.replace("epochs = 2", "epochs = 400").replace("seeds = 2", "seeds = 4"))
    first = subprocess.Popen([sys.executable, "-m", "trainlab", "run", str(config), "--out", str(out),
                              "--engine", "reference"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=SUBPROCESS_ENV)
    deadline = time.monotonic() + 60
    while not (out / LOCK_NAME).exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    second = subprocess.run([sys.executable, "-m", "trainlab", "run", str(config), "--out", str(out), "--resume"],
                            capture_output=True, text=True, env=SUBPROCESS_ENV)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert f"--out {out} is in use by pid {first.pid}" in lines[0]
    assert time.monotonic() - started < 15  # at once: the start-up of a python process, no training
    assert first.poll() is None  # (the check above saw it still writing)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert (out / "runs.csv").read_text().count("\n") == 5
    assert not (out / LOCK_NAME).exists()


def test_the_stale_lock_of_a_dead_process_is_taken_over(cli, write_config, tmp_path):
    out = tmp_path / "o"
    config = write_config(ONE_SEED)
    assert cli("run", config, "--out", out, "--set", "train.epochs=1").code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_NAME).write_text(f"{dead.pid}\n")  # left behind by a killed command
    r = cli("run", config, "--out", out, "--resume", "--set", "seeds=2", "--set", "train.epochs=1")
    assert r.code == 0, r.err
    assert (out / "runs.csv").read_text().count("\n") == 3


@pytest.mark.parametrize("name", ["moons/v2", "../../x", "", ".hidden", "a" * 65, "two words"])
@pytest.mark.parametrize("key", ["name", "experiment"])
def test_names_that_are_not_safe_file_names_are_refused(cli, write_config, tmp_path, key, name):
    r = cli("run", write_config(ONE_SEED), "--out", tmp_path / "o", "--set", f"{key}={name!r}")
    assert_bad_input(r, f"{key}:", "letters, digits")
    assert not (tmp_path / "o").exists()
    assert listing(tmp_path) == ["exp.toml"]


def test_a_safe_name_names_the_files(cli, write_config, tmp_path):
    r = cli("run", write_config(ONE_SEED), "--out", tmp_path / "o", "--set", "name='moons-v2.1_b'")
    assert r.code == 0, r.err
    assert (tmp_path / "o" / "moons-v2.1_b-loss.png").exists()


CSV_CONFIG = """
name = "fromcsv"
seeds = 1
[data]
name = "csv"
path = "points.csv"
[train]
epochs = 2
"""


def write_points(path, flip=False):
    rows = ["x1,x2,y"] + [f"{i / 10},{(i * 7 % 11) / 10},{(i % 2) ^ flip}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")


def test_resume_refuses_when_the_csv_data_changed(cli, write_config, tmp_path):
    write_points(tmp_path / "points.csv")
    config = write_config(CSV_CONFIG)
    out = tmp_path / "o"
    assert cli("run", config, "--out", out).code == 0
    before = (out / "runs.csv").read_text()
    write_points(tmp_path / "points.csv", flip=True)
    r = cli("run", config, "--out", out, "--resume", "--set", "seeds=2")
    assert_bad_input(r, "--resume", "data of 'fromcsv' differs", "points.csv changed")
    assert (out / "runs.csv").read_text() == before
    write_points(tmp_path / "points.csv")  # the same data again: resuming goes on
    assert cli("run", config, "--out", out, "--resume", "--set", "seeds=2").code == 0
    assert (out / "runs.csv").read_text().count("\n") == 3


def test_a_store_without_fingerprints_resumes_and_records_one(cli, write_config, tmp_path):
    import sqlite3

    config = write_config(ONE_SEED)
    out = tmp_path / "o"
    assert cli("run", config, "--out", out).code == 0
    db = sqlite3.connect(out / "runs.sqlite")
    with db:
        db.execute("UPDATE experiments SET data_fingerprint = NULL")
    db.close()
    assert cli("run", config, "--out", out, "--resume", "--set", "seeds=2").code == 0
    db = sqlite3.connect(out / "runs.sqlite")
    assert db.execute("SELECT data_fingerprint FROM experiments").fetchone()[0]
    db.close()


def test_a_store_from_before_an_option_existed_resumes(cli, write_config, tmp_path):
    """An option added since takes its default: a stored config without it is the same experiment."""
    import sqlite3

    config = write_config(ONE_SEED)
    out = tmp_path / "o"
    assert cli("run", config, "--out", out).code == 0
    db = sqlite3.connect(out / "runs.sqlite")
    stored = db.execute("SELECT config_toml FROM experiments").fetchone()[0]
    older = "\n".join(line for line in stored.splitlines() if not line.startswith("dropout ="))
    assert older != stored
    with db:
        db.execute("UPDATE experiments SET config_toml = ?", (older,))
    db.close()
    assert cli("run", config, "--out", out, "--resume", "--set", "seeds=2").code == 0
    assert_bad_input(cli("run", config, "--out", out, "--resume", "--set", "optim.lr=0.5"), "config of")
