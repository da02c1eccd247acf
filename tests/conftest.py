from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from trainlab.cli import main

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
