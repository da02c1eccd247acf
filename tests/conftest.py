from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from trainlab.cli import main
from trainlab.store import Store

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``trainlab ARGS`` in-process; return its exit code, stdout and stderr."""

    def call(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call


@pytest.fixture
def write_config(tmp_path):
    def write(text: str, name: str = "exp.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def assert_bad_input(result: CliResult, *fragments: str) -> None:
    """Exit 2, exactly one line on stderr containing every fragment, and no traceback."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


NOTEBOOK_TIMES = pytest.StashKey[dict]()


def pytest_configure(config):
    config.stash[NOTEBOOK_TIMES] = {}


def pytest_terminal_summary(terminalreporter, config):
    """Per-notebook execution times (tests/test_notebooks.py), so CI logs show the cost of each."""
    times = config.stash[NOTEBOOK_TIMES]
    if times:
        terminalreporter.section("notebook execution times")
        for name, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{seconds:6.1f} s  {name}")


def same_history(a: dict, b: dict) -> bool:
    """Two runs' histories (``history.History``) equal bit for bit, NaN where the other has NaN."""
    import numpy as np

    return a.keys() == b.keys() and all(np.array_equal(a[c], b[c], equal_nan=True) for c in a)


# The built-in experiments, and `trainlab lab --quick` run once for the tests that read its output.
ALL = ["activations", "initialization", "depth", "optimizers", "learning_rates", "xor_sgd_vs_adam",
       "overfit_check", "first_training_loop", "digits_depth_width"]


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "out"
    # On a shared 2-core machine two torch threads per process oversubscribe the cores and the
    # tiny population kernels slow down several-fold; one thread keeps this fixture in seconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, stdout, stderr = run_cli("lab", "--quick", "--out", out)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, stderr
    with Store(out) as store:
        runs = store.runs()
    return out, runs, stdout


# A config that trains in a moment, for the tests of what surrounds training.
TINY = """
name = "tiny"
seeds = 2
[data]
n_samples = 120
[train]
epochs = 2
"""
# The environment of a `trainlab` subprocess: one torch thread (the test machine's cores are shared).
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
