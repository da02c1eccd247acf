"""The ``trainlab`` command: a thin Typer layer over the library.

Bad input of any kind ends in one line on stderr and exit code 2 (``main`` turns BadInput, Click's
usage errors and filesystem or run-store faults into that line); a failed check is exit code 1.
"""

from __future__ import annotations

import errno
import math
import os
import shlex
import sqlite3
import statistics
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainlab import experiments
from trainlab.activations import ACTIVATIONS
from trainlab.data import DataCache
from trainlab.config import (DATASETS, INITS, OPTIMIZERS, SCHEDULES, DataConfig, RunConfig, apply_overrides,
                             config_from_dict, load_config)
from trainlab.errors import BadInput
from trainlab.imports import gc_paused

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="trainlab: train small neural networks and see what happens.",
)
# Piped into a file or a CI log there is no terminal width to fit, and rich's fallback of 80
# columns would cut the summary's setting names short.
out_console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)

# The options and arguments several commands share.
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config value: --set optim.lr=0.01 (TOML values)."),
]
YesOption = Annotated[bool, typer.Option("--yes", help="Go on even when the runs would take more than 10 minutes, "
                                                      "half the memory or over 100,000 runs.")]
ConfigArgument = Annotated[Path, typer.Argument(help="Experiment config (TOML).")]
DirectoryArgument = Annotated[Path, typer.Argument(help="An output directory of trainlab run or lab.")]
EngineOption = Annotated[str, typer.Option(help="auto | reference | population | manual")]
ForceOption = Annotated[bool, typer.Option(help="Replace an --out that trainlab made (its own files only).")]
RunSeedOption = Annotated[int, typer.Option(help="Run seed (initial weights, data order).")]


def _say(console: Console, text: str) -> None:
    """Plain text, printed as it is: no markup, no highlighting, and no wrapping of long paths."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


# The `trainlab` console script (entry) owns its process: the libraries a command imports stay
# frozen out of the garbage collector's sight (imports.gc_paused). Called from Python, main()
# leaves the caller's collector as it was.
_own_process = False


def libraries_loading():
    return gc_paused(keep_frozen=_own_process)


@contextmanager
def training_libraries_loaded(cfgs):
    """For a command that trains ``cfgs``: the data sets made aside (``DataCache.made_aside``)
    while torch, the runner, the population engine and the report's matplotlib import; yields the
    data sets' cache."""
    with DataCache.made_aside(cfgs) as data_for:
        with libraries_loading():
            import trainlab.plots  # noqa: F401
            import trainlab.population  # noqa: F401
            import trainlab.runner  # noqa: F401
        yield data_for


@contextmanager
def status_line():
    """A spinner on stderr with what a long command is doing (``say(text)`` updates it), shown only
    in a terminal."""
    if not sys.stderr.isatty():
        yield lambda text: None
        return
    with err_console.status("starting") as status:
        yield lambda text: status.update(f"{text}…")


# ---------------------------------------------------------------------------- run, lab


@app.command()
def run(
    config: ConfigArgument,
    set_: SetOption = None,
    engine: EngineOption = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default runs/<name>-<time>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    force: ForceOption = False,
    executor: Annotated[str, typer.Option(help="local | ray: where population chunks train.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (default: start Ray here).")] = None,
    max_memory: Annotated[Optional[str], typer.Option(
        help="Memory budget of one population chunk, e.g. 4GiB (default: a quarter of RAM).")] = None,
    yes: YesOption = False,
) -> None:
    """Train every run of CONFIG (each grid point × each seed) and write the output directory."""
    cfg = load_config(config, set_ or [])
    command = shlex.join(["trainlab", "run", str(config), *(arg for s in set_ or [] for arg in ("--set", s))])
    _train([cfg], out, cfg.name, command, max_memory=max_memory, engine=engine, resume=resume, force=force,
           yes=yes, executor=executor, ray_address=ray_address)


@app.command()
def lab(
    names: Annotated[Optional[list[str]], typer.Argument(help="Experiments to run (default: all).")] = None,
    seeds: Annotated[Optional[int], typer.Option(min=1, help="Seeds per setting (default 10).")] = None,
    quick: Annotated[bool, typer.Option(help="3 seeds per setting: for tests and a first look.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default runs/lab-<time>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted lab in --out.")] = False,
    force: ForceOption = False,
    engine: EngineOption = "auto",
    yes: YesOption = False,
) -> None:
    """Run the course experiments over many seeds and write the results."""
    cfgs = [experiments.load(name, seeds, quick) for name in names or experiments.names()]
    command = shlex.join(["trainlab", "lab", *(names or []), *(["--seeds", str(seeds)] if seeds else []),
                          *(["--quick"] if quick else [])])
    _train(cfgs, out, "lab", command, engine=engine, resume=resume, force=force, yes=yes)


def _train(cfgs: list[RunConfig], out: Path | None, name: str, command: str, max_memory: str | None = None,
           **options: Any) -> None:
    """Train ``cfgs`` into ``out`` (default runs/<name>-<time>) and print what came of it; after a
    Ctrl-C, the ``command`` that resumes."""
    with training_libraries_loaded(cfgs) as data_for:
        from trainlab.population.plan import parse_memory
        from trainlab.runner import default_out_dir, interrupted_message, run as run_experiments

        if max_memory is not None:
            options["max_memory"] = parse_memory(max_memory)
        out_dir = out or default_out_dir(name)
        try:
            results = run_experiments(cfgs, out=out_dir, progress=sys.stderr.isatty(), data_for=data_for, **options)
        except sqlite3.Error as e:  # the store turned unusable while the command wrote it
            raise BadInput(f"{out_dir / 'runs.sqlite'}: {e}") from None
        except OSError as e:
            if e.filename is None:
                raise BadInput(f"--out {out_dir}: {_os_problem(e)}") from None
            raise
        except KeyboardInterrupt:
            if (out_dir / "runs.sqlite").exists():
                _say(err_console, interrupted_message(out_dir, command))
            else:
                err_console.print("Interrupted before any run finished.")
            raise typer.Exit(130) from None
        report = results.report  # always there: the command draws the report
        # the report's runs are the stored ones, already read
        print_summary([r for e in report.experiments for r in e.runs], results.config, results.data_for)
        print_findings(report)
        out_console.print(f"\nResults in [bold]{out_dir}[/]: runs.csv, history.csv, runs.sqlite, plots (*.png)")
        print_report_location(report.path)


def print_findings(report) -> None:
    for e in report.experiments:
        out_console.print(f"\n[bold]{e.name}[/]: {escape(e.finding)}", highlight=False)  # labels hold [16,16]


def print_report_location(path: Path) -> None:
    """Where the report is and how to open it: a student may not know file:// URLs."""
    full = path.resolve()
    out_console.print(f"\n[bold green]Report:[/] {full}", highlight=False, soft_wrap=True)
    out_console.print(f"Open it in a browser: [bold]{full.as_uri()}[/]  (or: xdg-open {full}  ·  macOS: open {full})",
                      highlight=False, soft_wrap=True)


def print_summary(runs: list[dict], config_of, data_for) -> None:
    """One row per grid point: seeds, mean ± std of the final metrics, and what went wrong.
    ``config_of(experiment)`` and ``data_for(config)`` let the advice on diverged runs name a value."""
    from trainlab.config import with_values
    from trainlab.data import huge_inputs

    table = Table(title="Runs", show_lines=False)
    for col in ("experiment", "setting", "seeds", "final val loss (mean ± std)", "final val acc (mean ± std)",
                "status"):
        table.add_column(col, justify="left" if col in ("experiment", "setting", "status") else "right")
    advice = []
    pruned = 0
    groups: dict[tuple[str, str], list[dict]] = {}  # the same setting in two experiments: two rows
    for r in runs:
        groups.setdefault((r["experiment"], r["group"]), []).append(r)
    for (experiment, group), rs in groups.items():
        counts = Counter(r["status"] for r in rs)
        if counts["pruned"] == len(rs):  # a search's stopped trial: the report shows them
            pruned += 1
            continue
        kept = [r for r in rs if r["status"] not in ("diverged", "pruned")]  # as the findings do
        table.add_row(
            experiment,
            escape(group) if group != experiment else "-",
            str(len(rs)),
            _mean_std([r["final_val_loss"] for r in kept]),
            _mean_std([r["final_val_acc"] for r in kept]),
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if len(counts) > 1 else rs[0]["status"],
        )
        diverged = [r for r in rs if r["status"] == "diverged"]
        if not diverged:
            continue
        r = diverged[0]
        others = f" The table's numbers are the other {len(kept)}'s." if kept else ""
        what = (f"{group}: {len(diverged)} of {len(rs)} runs diverged (the loss became NaN/inf or rose far "
                f"above its start, by epoch {r['epochs_run']}).{others}")
        cfg = with_values(config_of(experiment), r["grid"], "grid")
        huge = huge_inputs(data_for(cfg))
        lr = f"{cfg.optim.lr / 10:.2g}"
        if huge:
            advice.append(f"{what} The cause: {huge}. Scale them: --set data.scale=standard (or minmax)")
        elif "optim.lr" in r["grid"]:
            advice.append(f"{what} Try a lower learning rate, 10× smaller: {lr} in place of {cfg.optim.lr:g} among "
                          "the grid's optim.lr values")
        else:
            advice.append(f"{what} Try a lower learning rate, 10× smaller: --set optim.lr={lr}")
    out_console.print(table)
    if pruned:
        out_console.print(f"{pruned} more trials were pruned by the search (the report shows them all).")
    for line in advice:
        out_console.print(f"[yellow]⚠ {escape(line)}[/]")


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    if not finite:
        return "nan"
    if len(finite) == 1:
        return f"{finite[0]:.4f}"
    return f"{statistics.fmean(finite):.4f} ± {statistics.stdev(finite):.4f}"


# ---------------------------------------------------------------------------- report, best, export


@app.command()
def report(directory: DirectoryArgument) -> None:
    """Rebuild report.html (and the plots) of DIRECTORY from its runs.sqlite."""
    with libraries_loading():
        from trainlab.report import build_report

    built = build_report(directory)
    print_findings(built)
    print_report_location(built.path)


@app.command()
def best(
    directory: Annotated[Path, typer.Argument(help="An output directory of a config with [search].")],
    experiment: Annotated[Optional[str], typer.Option(help="The search to read, if the directory has several.")] = None,
) -> None:
    """Print the best finished trial of a search as a config (TOML) for trainlab run."""
    with libraries_loading():
        from trainlab.report import best_toml

    sys.stdout.write(best_toml(directory, experiment))


export_app = typer.Typer(no_args_is_help=True, help="Send an output directory's runs to an experiment tracker.")
app.add_typer(export_app, name="export")


@export_app.command("mlflow")
def export_mlflow(
    directory: DirectoryArgument,
    tracking_uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: a SQLite store, DIRECTORY/mlflow.db).")] = None,
) -> None:
    """Log every run of DIRECTORY to MLflow: config as parameters, history as per-epoch metrics, figures."""
    with libraries_loading():
        from trainlab.trackers import to_mlflow

    uri, count = to_mlflow(directory, tracking_uri)
    _say(out_console, f"{count} runs logged to MLflow at {uri}  (view: mlflow ui --backend-store-uri {uri})")


@export_app.command("tensorboard")
def export_tensorboard(
    directory: DirectoryArgument,
    log_dir: Annotated[Optional[Path], typer.Option(help="Where to write (default: DIRECTORY/tensorboard).")] = None,
) -> None:
    """Write TensorBoard event files for every run of DIRECTORY: per-epoch metrics, hparams, figures."""
    with libraries_loading():
        from trainlab.trackers import to_tensorboard

    path, count = to_tensorboard(directory, log_dir)
    _say(out_console, f"{count} runs written to {path}  (view: tensorboard --logdir {path})")


# ---------------------------------------------------------------------------- list, data


@app.command("list")
def list_() -> None:
    """The built-in experiments and data sets."""
    from trainlab.data import describe as describe_data

    model_keys = {"model.activation": f"{', '.join(ACTIVATIONS)}, or a list: [\"tanh\", \"relu\"]",
                  "model.dropout": "a rate in [0, 1) after each hidden activation, or a list; off at evaluation",
                  "model.init": ", ".join(INITS),
                  "optim.name": ", ".join(OPTIMIZERS),
                  "optim.schedule.name": ", ".join(SCHEDULES)}
    trained = {"trainlab predict DIR --run RUN_ID --input points.csv": "predictions, as CSV",
               "trainlab export-model DIR --best --out model.safetensors": "one file to keep",
               "trainlab predict model.safetensors --input points.csv": "predict from that file"}
    for i, (heading, rows, width) in enumerate((
        ("[bold]Experiments[/] (trainlab lab NAME):", experiments.describe(), 22),
        ("[bold]Model and optimizer[/] (config keys; a list gives one value per hidden layer):", model_keys, 22),
        ("[bold]Trained models[/] (any run stored in an output directory):", trained, 57),
        ("[bold]Data sets[/] (data.name):", {name: describe_data(name) for name in DATASETS}, 22),
    )):
        if i:
            out_console.print()
        out_console.print(heading, highlight=False)
        for name, what in rows.items():
            out_console.print(f"  {name:<{width}} {what}", highlight=False, markup=False)


@app.command()
def data(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(DATASETS)}.")],
    out: Annotated[Path, typer.Option(help="CSV file to write (the data set's columns, then y).")],
    set_: SetOption = None,
) -> None:
    """Export a data set (all rows, before splitting) to CSV: trainlab data moons --out moons.csv."""
    from trainlab.data import column_names, generate, write_csv

    raw = apply_overrides({"data": {"name": name}}, [f"data.{s}" for s in set_ or []])
    cfg: DataConfig = config_from_dict(raw, source="trainlab data").data
    X, y = generate(cfg)
    if out.parent.exists() and not out.parent.is_dir():
        raise BadInput(f"--out {out}: {out.parent} is a file, not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_csv(out, X, y, None if cfg.name == "csv" else column_names(cfg))
    except OSError as e:
        raise BadInput(f"--out {out}: cannot write the CSV ({e.strerror})") from None
    out_console.print(f"Wrote {len(y)} rows of {cfg.name} to {out}")


# ---------------------------------------------------------------------------- predict, export-model

RunOption = Annotated[Optional[str], typer.Option("--run", help="The run's id (runs.csv's run_id column).")]
BestOption = Annotated[bool, typer.Option("--best", help="The run the findings rank best (instead of --run).")]
ExperimentOption = Annotated[Optional[str], typer.Option(
    help="With --best in a directory of several experiments: the one to pick from.")]


@app.command()
def predict(
    source: Annotated[Path, typer.Argument(help="An output directory of trainlab run or lab, or a model file "
                                                "written by export-model.")],
    input_: Annotated[Path, typer.Option("--input", help="CSV of points with the model's input columns "
                                                         "(other columns are kept).")],
    run: RunOption = None,
    best: BestOption = False,
    experiment: ExperimentOption = None,
    out: Annotated[Optional[Path], typer.Option(help="CSV to write (default: standard output).")] = None,
) -> None:
    """Predict the points of a CSV with a trained model: its rows, plus pred (and p_<class> per class)."""
    with libraries_loading():
        from trainlab.trained import Model, predict_csv, write_file

    if source.is_file():
        if run or best or experiment:
            raise BadInput(f"{source} is a model file: --run, --best and --experiment pick a run of an output "
                           "directory")
        model = Model.load(source)
    elif source.is_dir():
        model = _stored_model("predict", source, run, best, experiment)
    else:
        raise BadInput(f"{source}: no such output directory or model file")
    table = predict_csv(model, input_)
    if out is None:
        sys.stdout.write(table)
        return
    write_file(out, table.encode())
    _say(out_console, f"Wrote the predictions of {model.run_id or source} to {out}")


@app.command("export-model")
def export_model(
    source: DirectoryArgument,
    out: Annotated[Path, typer.Option(help="The model file to write (safetensors), e.g. model.safetensors.")],
    run: RunOption = None,
    best: BestOption = False,
    experiment: ExperimentOption = None,
) -> None:
    """Write a stored run's model as one safetensors file: weights, config, input scaling."""
    if source.is_file():
        raise BadInput(f"{source} is a file; export-model reads an output directory of trainlab run or lab")
    model = _stored_model("export-model", source, run, best, experiment)
    model.save(out)
    _say(out_console, f"Wrote {model.run_id} to {out}: {model!r}")


def _stored_model(command: str, directory: Path, run: str | None, best: bool, experiment: str | None):
    """The model of the run that --run or --best names in an output directory."""
    with libraries_loading():
        from trainlab.trained import load_model

    if (run is None) == (not best):
        raise BadInput(f"{command} {directory}: choose the run with --run RUN_ID or --best")
    return load_model(directory, run, best=best, experiment=experiment)


# ---------------------------------------------------------------------------- bench

# The table's columns: title, the measurement's key, its format ("-" where a row has none).
BENCH_COLUMNS = (("engine", "engine", ""), ("net", "net", ""), ("K", "K", ""), ("epochs", "epochs", ""),
                 ("model-epochs/s", "model_epochs_per_s", ",.0f"), ("×notebook", "x_notebook", ".1f"),
                 ("×sklearn", "x_sklearn", ".1f"), ("per CPU-s", "per_cpu_second", ",.0f"),
                 ("peak MiB", "peak_mib", ",.0f"), ("KiB/model", "kib_per_model", ".1f"),
                 ("overhead", "overhead_kib_per_model", ".1f"), ("load", "load_average", ".1f"))


@app.command()
def bench(
    quick: Annotated[bool, typer.Option(help="Fewer epochs and population sizes (about a minute).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the measurements as JSON.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Torch threads (and population workers) per "
                                                   "measurement (default: 1 for the one-model loops, one worker per "
                                                   "core for the population engine).")] = None,
) -> None:
    """Model-epochs/s of the notebook loop, scikit-learn, the reference and population engines."""
    import json

    from trainlab.bench import run_benchmark

    def show(r: dict) -> None:
        _say(err_console, f"  {r['engine']:<12} {r['net']:<11} K={r['K']:<5} epochs={r['epochs']:<4} "
                          f"{r['model_epochs_per_s']:>10,.0f} model-epochs/s  (load {r['load_average']:.1f})")

    results = run_benchmark(quick=quick, threads=threads, progress=None if as_json else show)
    if as_json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title="Throughput (Adam, batch 64, moons 600 points 70/30, val eval every epoch)")
    for title, _, _ in BENCH_COLUMNS:
        table.add_column(title, justify="left" if title in ("engine", "net") else "right")
    for r in results:
        table.add_row(*("-" if r.get(key) is None else format(r[key], fmt) for _, key, fmt in BENCH_COLUMNS))
    console = out_console if out_console.width >= 140 else Console(width=140)  # never squeeze the figures
    console.print(table)
    console.print("KiB/model: peak memory above the warmed-up process's baseline, per model; overhead: the same "
                  "beyond parameters, gradient, Adam state and history (KiB/model); per CPU-s: model-epochs per "
                  "CPU-second of the process and its workers (steadier than wall time on a shared machine); load: "
                  "the machine's 1-minute load average after the measurement (figures vary with it). trainlab run "
                  "rows: the whole command (start-up, training, store, CSV, plots, report) in a fresh process.")


@app.command()
def gradcheck(
    set_: SetOption = None,
    bug: Annotated[Optional[str], typer.Option(help="Check backprop with this planted bug (see --list-bugs).")] = None,
    list_bugs: Annotated[bool, typer.Option("--list-bugs", help="List the planted bugs and exit.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights.")] = 0,
    samples: Annotated[int, typer.Option(min=1, help="Training rows in the batch.")] = 16,
    course_004: Annotated[bool, typer.Option("--course-004", help="Check the course's TinyNet instead (notebook "
                                             "004: 2→2→1 tanh, MSE, one sample, seed 0).")] = False,
) -> None:
    """Check hand-written backprop against central differences and autograd (exit 1 if wrong)."""
    with libraries_loading():
        from trainlab.gradcheck import describe_bugs, gradcheck as check, render

    if list_bugs:
        for name, description in describe_bugs().items():
            _say(out_console, f"{name:<26} {description}")
        return
    if course_004 and set_:
        raise BadInput(f"--set {set_[0]}: --course-004 checks the course's own TinyNet, which takes no settings")
    for item in set_ or []:
        if not item.startswith(("model.", "data.")):
            raise BadInput(f"--set {item}: gradcheck takes model.* and data.* settings only")
    if course_004:
        result = check(bug=bug, course_004=True)
    else:
        cfg = config_from_dict(apply_overrides({}, set_ or []), source="trainlab gradcheck")
        result = check(cfg, bug=bug, seed=seed, n_samples=samples)
    render(result, out_console)
    if not result.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- doctor, lrfind


@app.command()
def doctor(
    config: Annotated[Optional[Path], typer.Argument(help="Experiment config (TOML).")] = None,
    set_: SetOption = None,
    seed: RunSeedOption = 0,
    engine: Annotated[str, typer.Option(help="reference | manual (hand-written backprop).")] = "reference",
    epochs: Annotated[Optional[int], typer.Option(
        help="Epochs of the brief run (default: the config's, at most 100).")] = None,
    system: Annotated[bool, typer.Option("--system", help="Show this machine's setup instead: versions, cores, "
                                         "and which code the population engine trains with.")] = False,
) -> None:
    """Train CONFIG briefly and run the debugging checklist: exit 0 healthy, 1 fault found."""
    if system:
        print_system()
        return
    if config is None:
        raise BadInput("doctor needs an experiment config (TOML) to check, or --system")
    cfg = load_config(config, set_ or [])
    with libraries_loading():
        from trainlab.doctor import diagnose, render

    with status_line() as say:
        diagnosis = diagnose(cfg, seed=seed, engine=engine, epochs=epochs, progress=say)
    render(diagnosis, out_console)
    if not diagnosis.healthy:
        raise typer.Exit(1)


def print_system() -> None:
    """Versions, cores and the population engine's code path per dtype (the C kernel, built on first use)."""
    import platform

    with libraries_loading():
        import torch

        from trainlab.population.compiled import kernel_status
    rows = [("python", platform.python_version()), ("torch", torch.__version__),
            ("cores", str(os.cpu_count())), ("torch threads", str(torch.get_num_threads())),
            *((f"engine {name}", kernel_status(dtype)) for name, dtype in (("float32", torch.float32),
                                                                          ("float64", torch.float64)))]
    for name, value in rows:
        _say(out_console, f"{name:<16}{value}")


@app.command()
def lrfind(
    config: ConfigArgument,
    set_: SetOption = None,
    seed: RunSeedOption = 0,
    out: Annotated[Optional[Path], typer.Option(help="Plot to write (default runs/<name>-lrfind.png).")] = None,
    lr_min: Annotated[float, typer.Option(help="First learning rate.")] = 1e-5,
    lr_max: Annotated[float, typer.Option(help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(help="Steps of the sweep (one minibatch each).")] = 100,
) -> None:
    """LR range test: one short run with an exponentially growing lr; plot loss vs lr, suggest an lr."""
    cfg = load_config(config, set_ or [])
    with libraries_loading():
        from trainlab.lrfind import check_writable, lr_range_test, plot_lr_find

    out = out or Path("runs") / f"{cfg.name}-lrfind.png"
    check_writable(out)
    with status_line() as say:
        say(f"LR range test: {steps} steps from lr {lr_min:g} to {lr_max:g}")
        result = lr_range_test(cfg, seed=seed, lr_min=lr_min, lr_max=lr_max, steps=steps)
    path = plot_lr_find(result, out,
                        title=f"LR range test: {cfg.name} ({cfg.optim.name}, batch {cfg.train.batch_size or 'full'})")
    stopped = "" if len(result.lrs) == steps else f", stopped at lr {result.lrs[-1]:.3g} when the loss blew up"
    out_console.print(f"LR range test of {cfg.name} ({cfg.optim.name}): {len(result.lrs)} steps from lr "
                      f"{lr_min:g}{stopped}.")
    out_console.print(f"Loss lowest at lr = {result.best_lr:.3g}; suggested lr = [bold]{result.suggested_lr:.3g}[/] "
                      f"(a tenth of that): --set optim.lr={result.suggested_lr:.2g}")
    out_console.print(f"Plot: {path}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
) -> None:
    """The web playground: train live in the browser, compare settings, share and export configs."""
    with libraries_loading():
        import sklearn.datasets  # noqa: F401  (the data sets' library: else the first request imports it)
        import torch
        import uvicorn

        from trainlab.web import create_app
        from trainlab.web.security import is_loopback

    _check_can_listen(host, port)
    if not is_loopback(host):
        err_console.print(f"[bold red]WARNING:[/] listening on {host}: anyone who can reach this machine can use "
                          "the playground and its CPU (there is no login). Use the default 127.0.0.1 unless you "
                          "mean to share it.", highlight=False)
    # These models are tiny: one thread per training avoids the threads fighting over the cores.
    torch.set_num_threads(1)
    out_console.print(f"trainlab playground: [bold]http://{'localhost' if is_loopback(host) else host}:{port}/[/] "
                      "(Ctrl-C to stop)", highlight=False)
    # torch.optim imports torch._dynamo (1-1.5 s) when it builds its first optimizer: done while the
    # server starts and the browser opens, not while the first page waits for its session.
    threading.Thread(target=lambda: torch.optim.SGD([torch.zeros(1, requires_grad=True)]), daemon=True).start()
    # Updates are mostly base64 already, sent ~30 times a second: compressing them costs more CPU than it saves.
    uvicorn.run(create_app(host, port), host=host, port=port, log_level="warning", ws_per_message_deflate=False)


def _check_can_listen(host: str, port: int) -> None:
    """Bind and release the address first: uvicorn reports an unknown host or a busy port only after
    the playground's URL is printed, as a log line with exit code 3."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind(address)
    except OSError as e:
        raise BadInput(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None


# ---------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    try:
        code = typer.main.get_command(app).main(args=argv, prog_name="trainlab", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):  # (Click turns a Ctrl-C in a command into Abort)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (BadInput, typer.TyperException, OSError, sqlite3.Error) as e:
        _say(err_console, f"trainlab: error: {_error_line(e)}")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _error_line(e: Exception) -> str:
    """What went wrong, in one line: bad input, a usage error, a filesystem or run-store fault."""
    if isinstance(e, typer.TyperException):  # a usage error of Typer's own copy of Click: bad option or value
        ctx = getattr(e, "ctx", None)
        return f"{e.format_message()} (see {ctx.command_path if ctx is not None else 'trainlab'} --help)"
    if isinstance(e, OSError):  # the path and the problem
        return (f"{e.filename}: " if e.filename is not None else "") + _os_problem(e)
    if isinstance(e, sqlite3.Error):
        return f"run store: {e}"
    return str(e)


def _os_problem(e: OSError) -> str:
    problem = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        problem += " (free some space: the runs already stored are kept, and --resume continues)"
    return problem


def entry() -> None:
    """The ``trainlab`` command: ``main()``, then a hard exit, as mypy does (``util.hard_exit``):
    tearing down an interpreter that has loaded torch, scikit-learn and matplotlib takes most of a
    second, spent freeing objects the OS reclaims at once. Everything trainlab writes is closed by
    then; with threads still alive (none is expected) the ordinary exit joins them."""
    global _own_process
    _own_process = True
    try:
        main()
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    if threading.active_count() > 1:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
