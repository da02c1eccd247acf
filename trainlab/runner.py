"""From configs to an output directory: expand the grid, train with an engine, store, export, plot.

An engine takes a list of run specs and yields finished runs a few at a time (the population
engine: a slice, about two seconds of training); each batch is committed to the store as it comes,
which is what makes a kill lose little and ``--resume`` safe.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.budget import check_size, count_runs
from trainlab.config import RunConfig, RunSpec, config_from_dict, expand, to_toml
from trainlab.data import DataCache, Dataset
from trainlab.errors import BadInput
from trainlab.findings import Setting, Summary, experiment_finding, settings, summarize
from trainlab.history import History, RunResult, histories as histories_of
from trainlab.outdir import check_resumable, data_fingerprint, writing_to
from trainlab.store import Store

DataFor = Callable[[RunConfig], Dataset]
Progress = Callable[[float], None]  # called with the number of runs (or a fraction of one) advanced
# An engine trains specs and yields their results a few at a time.
Engine = Callable[..., Iterator[list[RunResult]]]


def reference_engine(specs: list[RunSpec], data_for: DataFor, progress: Progress | None = None,
                     **train_kwargs: Any) -> Iterator[list[RunResult]]:
    from trainlab.train import train

    for spec in specs:
        # diagnostics=False: the store keeps history, not ``extra``, so a sweep would measure them for nothing
        yield [train(spec.config, spec.seed, data=data_for(spec.config), spec=spec, diagnostics=False,
                     **train_kwargs)]
        if progress:
            progress(1)


def population_engine(specs: list[RunSpec], data_for: DataFor, **options: Any) -> Iterator[list[RunResult]]:
    from trainlab.population import population_engine as engine

    return engine(specs, data_for, **options)


def manual_engine(specs: list[RunSpec], data_for: DataFor, progress: Progress | None = None
                  ) -> Iterator[list[RunResult]]:
    """The reference loop with gradients from hand-written backprop instead of autograd."""
    from trainlab.backprop import manual_gradients

    yield from reference_engine(specs, data_for, progress, gradients=manual_gradients)


ENGINES: dict[str, Engine] = {"reference": reference_engine, "population": population_engine, "manual": manual_engine}
EXECUTORS = ("local", "ray")


def population_search_reason(cfg: RunConfig) -> str | None:
    """Why ``cfg``'s search must train on the population engine (``search.search_engine``), as words
    for a message; None when its trials are runs like any other."""
    if cfg.search and cfg.search.method != "random":
        return f"search.method = {cfg.search.method!r} trains"
    if cfg.search and cfg.search.sampler == "tpe":
        return "search.sampler = 'tpe' trains its waves"
    return None


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
        return experiment_finding(experiment, cfg, self.runs(experiment), self.data_for(cfg).n_classes,
                                  self.curves(experiment))

    def figures(self, experiment: str) -> dict[str, Any]:
        """The report's figures of the experiment by kind (``loss``, ``boundary``, ``sweep``, ``lr``; a
        search's ``search`` and ``rungs``)."""
        from trainlab.report import figure_drawers

        with Store(self.out_dir) as store:
            drawers = figure_drawers(experiment, store.runs(experiment), self.curves(experiment),
                                     self.config(experiment), self.data_for)
            return {kind: draw(store) for kind, draw in drawers.items()}

    def history(self, run_id: str) -> dict[str, Any]:
        with Store(self.out_dir) as store:
            return store.history(run_id)

    def metrics(self, run_id: str) -> dict[str, Any] | None:
        """The run's metrics on its val and test splits (``trainlab.metrics``): the confusion matrix
        and per-class precision, recall and F1, or RMSE, MAE and R²."""
        with Store(self.out_dir) as store:
            return store.metrics(run_id)

    def params(self, run_id: str) -> dict[str, Any] | None:
        with Store(self.out_dir) as store:
            return store.params(run_id)


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress bar (runs done / total, ETA; safe to advance from the engine's threads), or
    None when not shown: rich is imported only then."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

    with RichProgress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TextColumn("runs  ETA"),
                      TimeRemainingColumn()) as bar:
        yield bar


# The histories of the runs a command trains are kept in memory for its report and CSV export (a
# second or two faster than reading them back, for thousands of runs) up to about this many bytes;
# the store has them all.
KEEP_HISTORIES_BYTES = 256 << 20


def run(cfg: RunConfig | list[RunConfig], engine: str = "auto", out: str | Path | None = None, resume: bool = False,
        force: bool = False, progress: bool = False, plots: bool = True, data_for: DataCache | None = None,
        yes: bool = False, **engine_options: Any) -> Results:
    """Train every run of one or more experiments into ``out`` and return the results: expand the
    grids, train, store each batch of runs as it finishes, export the CSV files, draw the report.
    ``yes``: go on even when the experiments are larger than ``budget.check_size`` allows;
    ``engine_options`` go to the population engine: ``executor`` ("local" or "ray"),
    ``ray_address``, ``max_memory`` (bytes)."""
    cfgs = cfg if isinstance(cfg, list) else [cfg]
    names = [c.experiment_name for c in cfgs]
    if len(set(names)) != len(names):
        raise BadInput(f"experiment names must be unique (got {', '.join(names)})")
    out_dir = Path(out) if out else default_out_dir(cfgs[0].name)
    executor = engine_options.get("executor", "local")
    check_executor(engine, executor)
    for c in cfgs:
        reason = population_search_reason(c)
        if reason and engine not in ("auto", "population"):
            raise BadInput(f"{c.experiment_name}: {reason} on the population engine: use --engine auto or population")
    data_for = data_for or DataCache()
    check_size(cfgs, [choose_engine(engine, count_runs(c), executor) for c in cfgs], yes=yes)
    plan = [(c, expand(c)) for c in cfgs]
    engines = [choose_engine(engine, len(specs), executor) for _, specs in plan]
    for c, specs in plan:  # every data set must load before anything is written or replaced
        for spec in specs:
            data_for(spec.config)
    fingerprints = {c.experiment_name: data_fingerprint(specs, data_for) for c, specs in plan}
    with writing_to(out_dir, resume=resume, force=force):
        histories = train_into(out_dir, plan, engines, resume, fingerprints, progress, data_for, engine_options)
        if not plots:
            return Results(out_dir, data_for=data_for)
        from trainlab.report import build_report

        return Results(out_dir, build_report(out_dir, data_for, histories=histories), data_for)


def train_into(out_dir: Path, plan: list[tuple[RunConfig, list[RunSpec]]], engines: list[str], resume: bool,
               fingerprints: dict[str, str], progress: bool, data_for: DataFor, engine_options: dict[str, Any]
               ) -> dict[str, History]:
    """Record the experiments in the store, train the runs it does not have, storing each batch as
    it comes, and export the CSV files; the histories of the runs trained now (up to
    KEEP_HISTORIES_BYTES), for the report."""
    histories: dict[str, History] = {}
    kept_bytes = 0
    with Store(out_dir) as store, progress_bar(progress) as bar:
        for c, _ in plan:
            check_resumable(store, c, resume, fingerprints[c.experiment_name])
            store.add_experiment(c.experiment_name, to_toml(c), c.varied_keys, fingerprints[c.experiment_name])
        (out_dir / "config.toml").write_text("\n".join(to_toml(c) for c, _ in plan))
        done = store.done_ids()
        for (c, specs), name in zip(plan, engines):
            positions = {s.run_id: i for i, s in enumerate(specs)}
            store.set_positions(positions)
            todo = [s for s in specs if s.run_id not in done]
            advance = None
            if bar is not None:
                task = bar.add_task(c.experiment_name, total=len(specs), completed=len(specs) - len(todo))
                advance = functools.partial(bar.advance, task)
            if not todo:
                continue
            options = engine_options if name == "population" else {}
            engine = ENGINES[name]
            if population_search_reason(c):
                from trainlab.search import search_engine

                engine, options = functools.partial(search_engine, search=c.search), engine_options
            for results in engine(todo, data_for, progress=advance, **options):
                store.save(results, positions)
                if kept_bytes < KEEP_HISTORIES_BYTES:
                    arrays = histories_of(results)
                    histories.update(arrays)
                    kept_bytes += sum(a.nbytes for h in arrays.values() for a in h.values())
        store.export_csv(out_dir, histories)
    return histories


def default_out_dir(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def interrupted_message(out_dir: Path, command: str) -> str:
    with Store(out_dir) as store:
        n = len(store.done_ids())
    runs = "1 finished run is" if n == 1 else f"{n} finished runs are"
    return f"Interrupted: {runs} saved in {out_dir}. Resume with: {command} --out {shlex.quote(str(out_dir))} --resume"
