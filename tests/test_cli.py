import csv
import subprocess
import statistics
import sys

import pytest

from conftest import ROOT, assert_bad_input
from trainlab.data import describe as describe_data

TINY = """
name = "tiny"
seeds = 2
[data]
n_samples = 200
[train]
epochs = 4
[grid]
"model.activation" = ["tanh", "relu"]
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def console_script() -> list[str]:
    """The installed `trainlab` entry point, as a user runs it."""
    trainlab = ROOT / ".venv" / "bin" / "trainlab"
    return [str(trainlab)] if trainlab.exists() else [sys.executable, "-m", "trainlab"]


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_run_writes_the_output_directory(cli, write_config, tmp_path):
    out = tmp_path / "out"
    r = cli("run", write_config(TINY), "--out", out, "--engine", "reference")
    assert r.code == 0, r.err
    for name in ("config.toml", "runs.csv", "history.csv", "runs.sqlite", "tiny-loss.png", "tiny-boundary.png"):
        assert (out / name).exists(), name
    runs = read_csv(out / "runs.csv")
    assert list(runs[0]) == [
        "run_id", "experiment", "seed", "model.activation", "status", "epochs_run", "best_epoch",
        "final_train_loss", "final_val_loss", "final_train_acc", "final_val_acc", "best_val_acc",
        "test_acc", "val_macro_f1", "test_macro_f1", "seconds",
    ]
    assert [r["model.activation"] for r in runs] == ["tanh", "tanh", "relu", "relu"]
    assert all(r["status"] == "ok" and r["epochs_run"] == "4" and r["test_acc"] == "" for r in runs)
    history = read_csv(out / "history.csv")
    assert len(history) == 4 * 4
    assert [h["epoch"] for h in history[:4]] == ["1", "2", "3", "4"]
    assert all(0 <= float(h["val_acc"]) <= 1 for h in history)
    assert "tiny" in r.out and str(out) in r.out


def test_set_overrides_reach_the_run(cli, write_config, tmp_path):
    out = tmp_path / "o"
    r = cli("run", write_config(TINY), "--out", out, "--set", "train.epochs=2", "--set", "seeds=1")
    assert r.code == 0, r.err
    runs = read_csv(out / "runs.csv")
    assert len(runs) == 2 and runs[0]["epochs_run"] == "2"


def test_existing_output_is_refused_then_forced(cli, write_config, tmp_path):
    out = tmp_path / "o"
    config = write_config(TINY)
    assert cli("run", config, "--out", out, "--set", "seeds=1").code == 0
    before = snapshot(out)
    assert_bad_input(cli("run", config, "--out", out), "not empty", "--resume", "--force")
    assert snapshot(out) == before
    # --force validates first: a bad config must not wipe the old results
    assert_bad_input(cli("run", config, "--out", out, "--force", "--set", "optim.lr=-1"), "optim.lr")
    assert snapshot(out) == before
    assert cli("run", config, "--out", out, "--force", "--set", "seeds=1", "--set", "train.epochs=2").code == 0
    assert read_csv(out / "runs.csv")[0]["epochs_run"] == "2"


def test_resume_completes_the_missing_runs(cli, write_config, tmp_path):
    out = tmp_path / "o"
    config = write_config(TINY)
    assert cli("run", config, "--out", out, "--set", "seeds=1").code == 0
    r = cli("run", config, "--out", out, "--resume")  # the config now asks for 2 seeds
    assert r.code == 0, r.err
    runs = read_csv(out / "runs.csv")
    assert [(x["model.activation"], x["seed"]) for x in runs] == [
        ("tanh", "0"), ("tanh", "1"), ("relu", "0"), ("relu", "1")
    ]
    assert_bad_input(cli("run", config, "--out", out, "--resume", "--set", "optim.lr=0.3"), "differs")


def test_diverging_run_says_what_to_try(cli, write_config, tmp_path):
    r = cli("run", write_config(TINY), "--out", tmp_path / "o", "--set", "optim.lr=1e7", "--set",
            "model.init='large'", "--set", "seeds=1")
    assert r.code == 0, r.err
    out = " ".join(r.out.split())
    assert "diverged" in out and "Try a lower learning rate, 10× smaller: --set optim.lr=1e+06" in out
    assert "..." not in out and "final val loss (mean ± std)" in out


def test_diverging_lr_in_a_grid_gets_its_own_value(cli, write_config, tmp_path):
    config = write_config(TINY.replace('"model.activation" = ["tanh", "relu"]', '"optim.lr" = [0.05, 3e6]'))
    r = cli("run", config, "--out", tmp_path / "o", "--set", "model.init='large'", "--set", "seeds=1")
    assert r.code == 0, r.err
    assert "Try a lower learning rate, 10× smaller: 3e+05 in place of 3e+06 among the grid's optim.lr values" in (
        " ".join(r.out.split()))


def test_diverging_because_the_inputs_are_huge_says_so(cli, write_config, tmp_path):
    rows = "".join(f"{(i % 7 - 3) * 1e300},{(i % 5 - 2) * 1e299},{i % 2}\n" for i in range(60))
    (tmp_path / "huge.csv").write_text("x1,x2,y\n" + rows)
    config = write_config('name = "huge"\n[data]\nname = "csv"\npath = "huge.csv"\nscale = "none"\n'
                          '[train]\nepochs = 2\n')
    r = cli("run", config, "--out", tmp_path / "o")
    out = " ".join(r.out.split())
    assert r.code == 0, r.err
    assert "the inputs are huge (|x| up to 3e+300" in out and "--set data.scale=standard" in out
    assert "lower learning rate" not in out
    # scaled, they overflow float64: refused before training, with what to do
    assert_bad_input(cli("run", config, "--out", tmp_path / "o2", "--set", "data.scale='standard'"),
                     "huge.csv: the inputs overflow", "data.scale=minmax")


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('name = "x"\n[model\n', ["exp.toml", "TOML syntax error", "line 2"]),
        ("[model]\nhiden = [3]\n", ["exp.toml", "model.hiden", "unknown key"]),
        ("[optim]\nlr = 0\n", ["optim.lr", "greater than 0"]),
        ('[optim]\nlr = "fast"\n', ["optim.lr"]),
        ("[data]\nsplit = [0.9, 0.3]\n", ["data.split", "sum to at most 1"]),
        ("[model]\nhidden = [0]\n", ["model.hidden", "at least 1 unit"]),
        ("[train]\nepochs = 0\n", ["train.epochs"]),
        ('[data]\nname = "mnist"\n', ["data.name", "moons", "circles", "csv"]),
        ('[model]\nactivation = "swish"\n', ["model.activation", "relu", "gelu"]),
        ('[optim]\nname = "lbfgs"\n', ["optim.name", "adam", "rmsprop"]),
        ('[data]\nname = "csv"\npath = "missing.csv"\n', ["missing.csv", "not found"]),
    ],
)
def test_bad_config_is_one_line_and_exit_2(cli, write_config, tmp_path, text, fragments):
    out = tmp_path / "o"
    assert_bad_input(cli("run", write_config(text), "--out", out), *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "csv_text, fragments",
    [
        ("x1,x2\n1,2\n", ["no column 'y'"]),
        ("x1,x2,y\n1,oops,0\n", ["row 2", "'x2'", "not a number"]),
        ("x1,x2,y\n1,inf,0\n2,2,1\n", ["row 2", "not a finite number"]),
        ("x1,x2,y\n1,2,1\n2,3,1\n", ["single class"]),
        ("x1,x2,y\n1,2,0\n2,3,1\n", ["data.split", "too few"]),
    ],
)
def test_bad_csv_is_one_line_and_exit_2(cli, write_config, tmp_path, csv_text, fragments):
    (tmp_path / "points.csv").write_text(csv_text)
    config = write_config('[data]\nname = "csv"\npath = "points.csv"\n')
    assert_bad_input(cli("run", config, "--out", tmp_path / "o"), "points.csv", *fragments)


def test_missing_config_file(cli, tmp_path):
    assert_bad_input(cli("run", tmp_path / "nope.toml"), "nope.toml", "not found")


def test_bad_option_is_one_line_and_writes_nothing(cli, write_config, tmp_path):
    out = tmp_path / "o"
    assert_bad_input(cli("run", write_config(TINY), "--out", out, "--engine", "turbo"), "--engine", "reference")
    assert_bad_input(cli("run", write_config(TINY), "--out", out, "--bogus"), "--bogus", "see trainlab run --help")
    assert_bad_input(cli("export", "mlflow", out, "--bogus"), "--bogus", "see trainlab export mlflow --help")
    assert_bad_input(cli("run", write_config(TINY), "--out", out, "--set", "novalue"), "KEY=VALUE")
    assert not out.exists()


def test_data_export(cli, tmp_path):
    out = tmp_path / "m.csv"
    r = cli("data", "moons", "--out", out, "--set", "n_samples=50", "--set", "noise=0.1")
    assert r.code == 0, r.err
    rows = read_csv(out)
    assert len(rows) == 50 and list(rows[0]) == ["x1", "x2", "y"]
    assert_bad_input(cli("data", "mnist", "--out", out), "data.name")


def test_list_names_experiments_datasets_and_model_options(cli):
    from trainlab.activations import ACTIVATIONS

    r = cli("list")
    assert r.code == 0 and "activations" in r.out and "spiral" in r.out and "digits" in r.out
    options = next(line for line in r.out.splitlines() if line.strip().startswith("model.activation"))
    assert all(name in options for name in ACTIVATIONS)
    assert "model.dropout" in r.out and "trainlab predict" in r.out


def test_console_script_runs_without_traceback(tmp_path):
    """The installed `trainlab` entry point, as a user runs it."""
    config = tmp_path / "bad.toml"
    config.write_text("[optim]\nlr = -1\n")
    cmd = console_script()
    p = subprocess.run([*cmd, "run", str(config)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "optim.lr" in p.stderr and "Traceback" not in p.stderr


def test_console_script_output_is_whole_when_piped(tmp_path):
    """The command exits without tearing the interpreter down (cli.entry): what it printed into a
    pipe, and the files it wrote, must all be there."""
    config = tmp_path / "two.toml"
    config.write_text('seeds = 2\n[data]\nn_samples = 100\n[train]\nepochs = 3\n')
    cmd = console_script()
    listed = subprocess.run([*cmd, "list"], capture_output=True, text=True, cwd=tmp_path)
    assert listed.returncode == 0
    assert "activations" in listed.stdout and listed.stdout.endswith(describe_data("csv") + "\n")  # the last line too
    ran = subprocess.run([*cmd, "run", str(config), "--out", "out"], capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "Report:" in ran.stdout
    for name in ("runs.csv", "history.csv", "runs.sqlite", "report.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert len((tmp_path / "out" / "history.csv").read_text().splitlines()) == 1 + 2 * 3


def test_console_script_bad_input_in_options_or_data_is_one_line_and_writes_nothing(tmp_path):
    cmd = console_script()
    config = tmp_path / "big.toml"
    config.write_text('seeds = 2\n[data]\nn_samples = 5000\n[grid]\n"data.noise" = [0.1, 0.2, 0.3]\n')
    (tmp_path / "points.csv").write_text("x1,x2,y\n1,2,0\n3,oops,1\n")
    bad_csv = tmp_path / "csv.toml"
    bad_csv.write_text('seeds = 2\n[data]\nname = "csv"\npath = "points.csv"\n')
    for args, fragment in [((config, "--max-memory", "lots"), "--max-memory"),
                           ((config, "--engine", "turbo"), "--engine"), ((bad_csv,), "'oops' is not a number")]:
        p = subprocess.run([*cmd, "run", *map(str, args), "--out", "out"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and fragment in p.stderr, p.stderr
        assert not (tmp_path / "out").exists()


def test_a_command_called_from_python_leaves_the_garbage_collector_as_it_was(cli):
    import gc

    gc.disable()
    try:
        assert cli("gradcheck").code == 0
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_the_summary_keeps_one_setting_of_two_experiments_apart(capsys):
    from trainlab.cli import print_summary
    from trainlab.config import config_from_dict
    from trainlab.data import DataCache

    def run(experiment, loss):
        return {"experiment": experiment, "group": "optim=adam", "status": "ok", "final_val_loss": loss,
                "final_val_acc": 0.9, "epochs_run": 5, "grid": {"optim.name": "adam"}}

    runs = [run("first", 0.25), run("first", 0.25), run("second", 0.75)]
    print_summary(runs, lambda experiment: config_from_dict({}), DataCache())
    rows = [line for line in capsys.readouterr().out.splitlines() if "optim=adam" in line]
    assert len(rows) == 2
    assert "0.25" in rows[0] and "first" in rows[0] and "0.75" in rows[1] and "second" in rows[1]


def test_the_runs_table_leaves_diverged_seeds_out_of_its_means_as_the_findings_do(cli, tmp_path):
    """SGD at lr 10 on the lab's learning-rate setup: some seeds diverge, some do not."""
    config = tmp_path / "lr10.toml"
    config.write_text('name = "lr10"\nseeds = 10\n[data]\nname = "moons"\nn_samples = 600\nseed = 42\n'
                      '[model]\nhidden = [32]\n[optim]\nname = "sgd"\nlr = 10.0\n[train]\nepochs = 20\nbatch_size = 64\n')
    r = cli("run", config, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    runs = read_csv(tmp_path / "o" / "runs.csv")
    kept = [float(x["final_val_loss"]) for x in runs if x["status"] != "diverged"]
    assert 0 < len(kept) < 10, "the setup should mix diverged and finished seeds"
    row = next(line for line in r.out.splitlines() if "lr10" in line and "│" in line)
    shown = float(row.split("│")[4].split("±")[0])
    assert shown == pytest.approx(statistics.fmean(kept), abs=1e-4)
    assert f"The table's numbers are the other {len(kept)}'s." in " ".join(r.out.split())
