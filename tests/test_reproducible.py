import subprocess
import sys

import pytest

from conftest import ROOT

CONFIG = """
name = "repro"
seeds = 2
[data]
name = "spiral"
n_samples = 300
[model]
hidden = [16, 16]
activation = "tanh"
[optim]
name = "adam"
lr = 0.01
[train]
epochs = 30
batch_size = 32
"""


@pytest.mark.slow
def test_same_config_gives_bit_identical_tables_in_separate_processes(tmp_path):
    config = tmp_path / "repro.toml"
    config.write_text(CONFIG)
    trainlab = ROOT / ".venv" / "bin" / "trainlab"
    cmd = [str(trainlab)] if trainlab.exists() else [sys.executable, "-m", "trainlab"]
    for out in ("a", "b"):
        p = subprocess.run([*cmd, "run", str(config), "--out", str(tmp_path / out), "--engine", "reference"],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()

    def without_seconds(path):
        return [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]

    assert without_seconds(tmp_path / "a" / "runs.csv") == without_seconds(tmp_path / "b" / "runs.csv")
