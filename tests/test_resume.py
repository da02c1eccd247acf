"""Storage under fire: SIGKILL or Ctrl-C in the middle of a lab loses at most the chunk in flight,
never corrupts runs.sqlite, and ``--resume`` finishes with the tables of an uninterrupted lab."""

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ROOT

LAB = ["lab", "activations", "depth", "--seeds", "2"]  # 12 runs in several chunks, a few seconds
TOTAL = 12


# One torch thread per process: the shared test machine's 2 cores are oversubscribed otherwise.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def trainlab_cmd():
    exe = ROOT / ".venv" / "bin" / "trainlab"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "trainlab"]


def finished_runs(out):
    path = out / "runs.sqlite"
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(path, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # the tables are not created yet
        return 0


def start_and_interrupt(out, sig):
    """Start the lab in a subprocess, send ``sig`` once at least one run is stored; return it."""
    proc = subprocess.Popen([*trainlab_cmd(), *LAB, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while finished_runs(out) < 1:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run finished within 120 s"
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


def tables(out):
    """runs.csv without the timing column, and history.csv, as text."""
    runs = (out / "runs.csv").read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in runs], (out / "history.csv").read_text()


def integrity(out):
    db = sqlite3.connect(out / "runs.sqlite")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "out"
    p = subprocess.run([*trainlab_cmd(), *LAB, "--out", str(out)], capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    return tables(out)


def test_sigkill_mid_lab_keeps_the_store_sound_and_resume_gives_the_same_tables(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    code, _, _ = start_and_interrupt(out, signal.SIGKILL)
    assert code == -signal.SIGKILL
    done = finished_runs(out)
    assert 0 < done < TOTAL, f"the kill should land mid-lab ({done} of {TOTAL} runs stored)"
    assert integrity(out) == "ok"
    db = sqlite3.connect(out / "runs.sqlite")  # every stored run is whole: its history is complete
    epochs = dict(db.execute("SELECT run_id, epochs_run FROM runs"))
    counts = dict(db.execute("SELECT run_id, COUNT(*) FROM history GROUP BY run_id"))
    db.close()
    assert epochs == counts

    p = subprocess.run([*trainlab_cmd(), *LAB, "--out", str(out), "--resume"], capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    assert integrity(out) == "ok"
    assert tables(out) == uninterrupted


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, uninterrupted):
    out = tmp_path / "interrupted [lab]"  # the command printed must quote it
    code, _, stderr = start_and_interrupt(out, signal.SIGINT)
    assert code == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "Resume with:" in line]
    assert len(lines) == 1, stderr
    command = shlex.split(lines[0].split("Resume with:", 1)[1])
    assert command[0] == "trainlab" and "--resume" in command and str(out) in command
    assert integrity(out) == "ok"

    p = subprocess.run([*trainlab_cmd(), *command[1:]], capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    assert tables(out) == uninterrupted


# 600,000 model-epochs, ~10 s of training on 2 cores: the kill 3-4.5 s in lands inside it.
BIG_SWEEP = ('name = "big"\nseeds = 4000\n[data]\nn_samples = 300\n[model]\nhidden = [16]\n'
             '[optim]\nname = "adam"\nlr = 0.01\n[train]\nepochs = 150\nbatch_size = 32\n')


def test_sigkill_inside_one_big_population_keeps_what_finished_and_resume_is_uninterrupted(tmp_path):
    """One population of 4,000 runs: finished slices are stored while the others train, so a kill
    at a random moment at least 3 s in loses about a second of work, not the whole population."""
    import random

    config = tmp_path / "big.toml"
    config.write_text(BIG_SWEEP)
    out = tmp_path / "killed"
    started = time.monotonic()
    proc = subprocess.Popen([*trainlab_cmd(), "run", str(config), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = started + 3 + random.uniform(0, 1.5)
    while time.monotonic() < deadline or finished_runs(out) == 0:
        assert proc.poll() is None, f"the sweep ended before the kill: {proc.communicate()}"
        assert time.monotonic() < started + 120, "no run stored within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    kept = finished_runs(out)
    assert 1 <= kept < 4000
    resumed = subprocess.run([*trainlab_cmd(), "run", str(config), "--out", str(out), "--resume"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run([*trainlab_cmd(), "run", str(config), "--out", str(tmp_path / "whole")],
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    assert tables(out) == tables(tmp_path / "whole")


def processes_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (a command started with it, and its helpers)."""
    pids = []
    for proc in os.listdir("/proc"):
        try:
            if proc.isdigit() and marker.encode() in open(f"/proc/{proc}/environ", "rb").read():
                pids.append(int(proc))
        except OSError:
            continue
    return pids


def start_marked(tmp_path, marker: str) -> subprocess.Popen:
    config = tmp_path / "c.toml"
    config.write_text('name = "c"\nseeds = 4\n[train]\nepochs = 5\n')
    return subprocess.Popen([*trainlab_cmd(), "run", str(config), "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "TRAINLAB_TEST_MARKER": marker})


HELPER_INTERRUPTED = """
import os, sys
from trainlab.config import config_from_dict
from trainlab.data import DataCache

import signal

def interrupt(*_):
    raise KeyboardInterrupt

signal.signal(signal.SIGALRM, interrupt)
cfg = config_from_dict({"name": "a", "data": {"n_samples": 100}})
try:
    with DataCache.made_aside([cfg]) as data_for:
        print(data_for._helper.pid, flush=True)
        if sys.argv[1] == "waiting":
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            data_for(cfg)  # waits for the helper's ~1 s of imports: the Ctrl-C comes meanwhile
        raise KeyboardInterrupt  # as a Ctrl-C while torch imports
except KeyboardInterrupt:
    pass
"""


@pytest.mark.parametrize("when", ["importing", "waiting"])
def test_ctrl_c_while_the_data_helper_works_stops_it(tmp_path, when):
    """`trainlab run` and `lab` make their data sets in a helper process while torch imports: a
    Ctrl-C meanwhile ends the helper with the command. (The command itself is not interrupted here:
    a Ctrl-C inside torch's C++ initialisation aborts the process, torch's own behaviour.)"""
    out = subprocess.run([sys.executable, "-c", HELPER_INTERRUPTED, when], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.1])  # after trainlab's config imports, before torch's
def test_ctrl_c_while_the_command_starts_up_prints_no_traceback(tmp_path, delay):
    proc = start_marked(tmp_path, f"startup-{os.getpid()}-{delay}")
    # Counted from pydantic's compiled core loading (trainlab.config, ~0.11 s in on a quiet machine):
    # a Ctrl-C earlier, while Python itself starts (its site module), is a fatal error of CPython's
    # that no program can catch, and a loaded machine moved a delay from the start into it.
    deadline = time.monotonic() + 60
    while proc.poll() is None and "pydantic_core" not in open(f"/proc/{proc.pid}/maps").read():
        assert time.monotonic() < deadline, "trainlab's imports did not start"
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    # (a signal before Python has set up its handler ends the process as the signal does: -2)
    assert proc.returncode in (130, -signal.SIGINT), stderr
    assert "Traceback" not in stderr, stderr
