"""From configs to an output directory: expand the grid, train with an engine, store, export, plot.

An engine takes a list of run specs and yields finished runs a chunk at a time; each chunk is
committed to the store before the next one starts, which is what makes ``--resume`` safe.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from trainlab.budget import check_size, count_runs
from trainlab.config import RunConfig, RunSpec, config_from_dict, expand, to_toml
from trainlab.data import DataCache, Dataset
from trainlab.errors import BadInput
from trainlab.findings import Setting, Summary, settings, summarize, write_finding
from trainlab.forking import FORK, fork, forked, interrupts_held, succeeded
from trainlab.history import RunResult, history_arrays
from trainlab.outdir import check_resumable, data_fingerprint, writing_to
from trainlab.store import Store, Unsaved, write_bytes

DataFor = Callable[[RunConfig], Dataset]
Engine = Callable[[list[RunSpec], DataFor], Iterator[list[RunResult]]]


def reference_engine(specs: list[RunSpec], data_for: DataFor, **train_kwargs: Any) -> Iterator[list[RunResult]]:
    from trainlab.train import train

    for spec in specs:
        # diagnostics=False: the store keeps history, not ``extra``, so a sweep would measure them for nothing
        yield [train(spec.config, spec.seed, data=data_for(spec.config), spec=spec, diagnostics=False,
                     **train_kwargs)]


def population_engine(specs: list[RunSpec], data_for: DataFor, **options: Any) -> Iterator[list[RunResult]]:
    from trainlab.population import population_engine as engine

    return engine(specs, data_for, **options)


def manual_engine(specs: list[RunSpec], data_for: DataFor) -> Iterator[list[RunResult]]:
    """The reference loop with gradients from hand-written backprop instead of autograd."""
    from trainlab.backprop import manual_gradients

    yield from reference_engine(specs, data_for, gradients=manual_gradients)


ENGINES: dict[str, Engine] = {
    "reference": reference_engine,
    "population": population_engine,
    "manual": manual_engine,
}
EXECUTORS = ("local", "ray")


def check_executor(engine: str, executor: str) -> None:
    if executor not in EXECUTORS:
        raise BadInput(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        if engine not in ("auto", "population"):
            raise BadInput(f"--executor ray runs population chunks: use --engine population (got {engine!r})")
        from trainlab.population.ray_executor import check_ray

        check_ray()


def choose_engine(name: str, n_runs: int, executor: str = "local") -> str:
    """``auto``: the population engine whenever there is more than one run (or Ray runs them)."""
    if executor == "ray":
        return "population"
    if name != "auto":
        if name not in ENGINES:
            raise BadInput(f"--engine {name!r}: expected one of {', '.join(['auto', *ENGINES])}")
        return name
    return "population" if n_runs > 1 else "reference"


@dataclass
class Results:
    """A finished (or partly finished) output directory, read back from its store.

    ``Results(DIR)`` opens any output directory. ``summary``, ``settings``, ``finding`` and
    ``figures`` are what the report shows, as objects to read in Python or a notebook.
    """

    out_dir: Path
    report: Any = None  # the trainlab.report.Report written for it, if any
    data_for: DataCache = field(default_factory=DataCache, repr=False)

    def runs(self, experiment: str | None = None) -> list[dict[str, Any]]:
        with Store(self.out_dir) as store:
            return store.runs(experiment)

    def experiments(self) -> list[str]:
        with Store(self.out_dir) as store:
            return [e["experiment"] for e in store.experiments()]

    def config(self, experiment: str) -> RunConfig:
        """The experiment's config as it was run (every default written out)."""
        with Store(self.out_dir) as store:
            stored = {e["experiment"]: e["config_toml"] for e in store.experiments()}
        if experiment not in stored:
            raise BadInput(f"{self.out_dir}: no experiment {experiment!r} (found: {', '.join(stored)})")
        return config_from_dict(tomllib.loads(stored[experiment]), source=f"{self.out_dir} ({experiment})")

    def summary(self, experiment: str | None = None) -> Summary:
        """Final metrics per setting, mean ± 95% CI over seeds: the report's table."""
        return summarize(self.runs(experiment))

    def settings(self, experiment: str) -> list[Setting]:
        """The experiment's settings (grid points), each with its runs: ``s.values("final_val_loss")``."""
        return settings(self.runs(experiment))

    def curves(self, experiment: str) -> dict[str, list[dict[str, Any]]]:
        """The per-epoch histories of each setting's runs, by group."""
        with Store(self.out_dir) as store:
            return store.curves(store.runs(experiment))

    def finding(self, experiment: str) -> str:
        """What the runs show, in words written from the numbers (the report's finding)."""
        cfg = self.config(experiment)
        return write_finding(experiment, self.runs(experiment), cfg.train.epochs, self.data_for(cfg).n_classes,
                             self.curves(experiment))

    def figures(self, experiment: str) -> dict[str, Any]:
        """The report's figures of the experiment by kind (``loss``, ``boundary``, ``sweep``, ``lr``)."""
        from trainlab.plots import figure_drawers

        with Store(self.out_dir) as store:
            drawers = figure_drawers(experiment, store.runs(experiment), self.curves(experiment),
                                     self.config(experiment), self.data_for)
            return {kind: draw(store.params) for kind, draw in drawers.items()}

    def history(self, run_id: str) -> dict[str, Any]:
        with Store(self.out_dir) as store:
            return store.history(run_id)

    def params(self, run_id: str) -> dict[str, Any] | None:
        with Store(self.out_dir) as store:
            return store.params(run_id)


class Progress:
    """A rich progress bar per experiment (runs done / total, ETA); silent when not a terminal."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("{task.description:<22}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("runs  ETA"),
                TimeRemainingColumn(),
            )

    def __enter__(self) -> Progress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def add(self, name: str, total: int, done: int) -> Any:
        return self.bar.add_task(name, total=total, completed=done) if self.bar else None

    def advance(self, task: Any, n: int) -> None:
        if self.bar:
            self.bar.advance(task, n)


# The histories of the runs a command trains are kept in memory for its report and CSV export (a
# second or two faster than reading them back, for thousands of runs) up to about this many bytes;
# the store has them all.
KEEP_HISTORIES_BYTES = 256 << 20
# The last chunk is written to the store by a forked process while the report is drawn when it
# holds at least this many epochs (history rows: ~1.5 µs each in SQLite, so 0.1 s, against ~10 ms
# for the fork); K = 4,096 × 150 epochs took 1.4 s to store.
SAVE_ALONGSIDE_EPOCHS = 50_000


def run(
    cfg: RunConfig | list[RunConfig],
    engine: str = "auto",
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    plots: bool = True,
    on_engine: Callable[[str, RunConfig], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    max_memory: int | None = None,
    data_for: DataCache | None = None,
    yes: bool = False,
) -> Results:
    """Train every run of one or more experiments into ``out`` and return the results.
    ``data_for``: a cache of the data sets, perhaps being made already (``DataCache.made_aside``);
    ``yes``: go on even when the experiments are larger than ``budget.check_size`` allows."""
    cfgs = cfg if isinstance(cfg, list) else [cfg]
    names = [c.experiment_name for c in cfgs]
    if len(set(names)) != len(names):
        raise BadInput(f"experiment names must be unique (got {', '.join(names)})")
    out_dir = Path(out) if out else default_out_dir(cfgs[0].name)
    check_executor(engine, executor)
    data_for = data_for or DataCache()
    check_size(cfgs, [choose_engine(engine, count_runs(c), executor) for c in cfgs], yes=yes)
    plan = [(c, expand(c)) for c in cfgs]
    engines = [choose_engine(engine, len(specs), executor) for _, specs in plan]
    for c, specs in plan:  # every data set must load before anything is written or replaced
        for spec in specs:
            data_for(spec.config)
    fingerprints = {c.experiment_name: data_fingerprint(specs, data_for) for c, specs in plan}
    with writing_to(out_dir, resume=resume, force=force):
        with Store(out_dir) as store:
            for c, _ in plan:
                check_resumable(store, c, resume, fingerprints[c.experiment_name])
                store.add_experiment(c.experiment_name, to_toml(c), list(c.grid), fingerprints[c.experiment_name])
            (out_dir / "config.toml").write_text("\n".join(to_toml(c) for c in cfgs))
            done = store.done_ids()
            todos = [[s for s in specs if s.run_id not in done] for _, specs in plan]
            left = sum(map(len, todos))
            # no forks after Ray, whose threads may linger in this process
            forks = executor == "local" and FORK
            histories: dict[str, dict[str, Any]] = {}  # of the runs trained now, for the report and CSV
            kept_bytes = 0
            unsaved = None  # the last chunk, written to the store while the report is drawn
            with Progress(progress) as bar:
                for (c, specs), todo, name in zip(plan, todos, engines):
                    positions = {s.run_id: i for i, s in enumerate(specs)}
                    store.set_positions(positions)
                    task = bar.add(c.experiment_name, len(specs), len(specs) - len(todo))
                    if on_engine:
                        on_engine(name, c)
                    if not todo:
                        continue
                    options = (dict(executor=executor, ray_address=ray_address, max_memory=max_memory)
                               if name == "population" else {})
                    for chunk in ENGINES[name](todo, data_for, **options):
                        left -= len(chunk)
                        arrays = history_arrays(chunk) if kept_bytes < KEEP_HISTORIES_BYTES else {}
                        histories.update(arrays)
                        kept_bytes += sum(a.nbytes for h in arrays.values() for a in h.values())
                        epochs = sum(len(h["epoch"]) for h in arrays.values())
                        if left == 0 and arrays and epochs >= SAVE_ALONGSIDE_EPOCHS and plots and forks:
                            unsaved = Unsaved(chunk, positions)
                        else:
                            store.save(chunk, positions)
                        bar.advance(task, len(chunk))
            if not plots:
                store.export_csv(out_dir)
                return Results(out_dir, data_for=data_for)
        # the figures as PNG files, and report.html with them embedded; the CSV files and the store's
        # last chunk (a second or so for thousands of runs) meanwhile
        from trainlab.report import build_report

        with (saving(out_dir, unsaved),
              exporting_csv(out_dir, in_background=forks, histories=histories, unsaved=unsaved)):
            report = build_report(out_dir, data_for, histories=histories, in_parallel=forks, unsaved=unsaved)
        return Results(out_dir, report, data_for)


@contextmanager
def saving(out_dir: Path, unsaved: Unsaved | None) -> Iterator[None]:
    """Write ``unsaved`` into the store from a forked process while the body runs (readers of the
    store see its runs through ``Store(out_dir, unsaved)`` meanwhile). The runs are stored however
    the body ends: an error or a Ctrl-C there waits for the writer, which ignores Ctrl-C, and if
    the writer fails this process stores them."""
    if unsaved is None:
        yield
        return

    def save() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group
        with Store(out_dir) as store:
            store.save(unsaved.results, unsaved.positions)

    writers: list[int] = []
    try:
        fork(save, writers)
        yield
    finally:
        with interrupts_held():  # a second Ctrl-C goes on once the runs are stored
            if not (writers and succeeded(writers[0])):
                with Store(out_dir) as store:
                    store.save(unsaved.results, unsaved.positions)


# history.csv is written in this many parts by as many forked processes, then concatenated: for a
# sweep of thousands of runs it takes longer than the plots (K = 4096 x 150 epochs: 3.3 s in one
# process), so one process left the other core idle once the report was done.
CSV_PARTS = 2


@contextmanager
def exporting_csv(out_dir: Path, in_background: bool, histories: Mapping[str, dict[str, Any]] | None = None,
                  unsaved: Unsaved | None = None) -> Iterator[None]:
    """Write runs.csv and history.csv from the store (and ``unsaved``), in forked processes while
    the body runs (they read the same committed store, and the ``histories`` already in memory
    rather than read them again). history.csv is written in ``CSV_PARTS`` parts side by side."""
    if not (in_background and FORK):
        yield
        with Store(out_dir, unsaved) as store:
            store.export_csv(out_dir)
        return
    final = out_dir / "history.csv"
    parts = [final.with_suffix(f".csv.part{i}") for i in range(CSV_PARTS)]

    def export(i: int) -> Callable[[], None]:
        def task() -> None:
            os.nice(10)  # behind the store's last chunk and the report, which the command waits on
            with Store(out_dir, unsaved) as store:
                if i == 0:
                    store.export_runs_csv(out_dir)
                write_bytes(parts[i], store.history_csv(i, CSV_PARTS, histories))

        return task

    try:
        with forked([export(i) for i in range(CSV_PARTS)]):
            yield
        with parts[0].open("ab") as out:
            for path in parts[1:]:
                with path.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        parts[0].replace(final)
    finally:
        for path in parts:
            path.unlink(missing_ok=True)


def default_out_dir(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def interrupted_message(out_dir: Path, command: str) -> str:
    with Store(out_dir) as store:
        n = len(store.done_ids())
    runs = "1 finished run is" if n == 1 else f"{n} finished runs are"
    return f"Interrupted: {runs} saved in {out_dir}. Resume with: {command} --out {out_dir} --resume"
