"""``report.html``: one self-contained page for an output directory, rebuilt from ``runs.sqlite``.

Figures are PNGs embedded as base64 (and also written next to the report), styles are inline,
nothing is fetched: the file opens from disk in any browser, offline. ``figure_drawers`` decides an
experiment's figures; ``best_toml`` writes a search's best trial as a config (``trainlab best``).
"""

from __future__ import annotations

import base64
import html
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from trainlab.config import (FIXED_DATASETS, RunConfig, config_from_dict, expand, format_value, to_toml, values_label,
                             with_values)
from trainlab.data import DEFAULT_FUNCTION, DataCache, Dataset
from trainlab.errors import BadInput
from trainlab.findings import (METRIC_NAMES, Setting, experiment_finding, fmt, focus, numeric_sweep, rank_key, ranked,
                               settings, trials)
from trainlab.metrics import SUMMARY_METRICS
from trainlab.models import layer_sizes
from trainlab.store import STORE_NAME, Store, write_atomic

REPORT_NAME = "report.html"
TABLE_METRICS = ("final_train_loss", "final_val_loss", "final_train_acc", "final_val_acc", "test_acc")
FIGURE_CAPTIONS = {
    "loss": "Loss per epoch: the line is the mean over seeds, the shaded band ±1 standard deviation "
            "(the spread of single runs).",
    "sweep": "Final loss against the swept value: mean with 95% confidence-interval bars.",
    "lr": "The learning rate used in each epoch.",
    "confusion": "Confusion matrix of a typical seed (the one with the median val loss) per setting, on the test "
                 "split (the val split without one): row i, column j counts the points of class i predicted as j; "
                 "the colour is that count's fraction of row i (the diagonal is each class's recall).",
    "search": "Val loss of each trial (mean over seeds, at the epoch it stopped) against each sampled value; "
              "the star is the best trial that trained to the end.",
    "rungs": "Val loss of each trial by epoch: pruned (grey) trials stop where they were compared.",
    "boundary": "Decision boundary of a typical seed (the one with the median val loss) per setting: "
                "colour is the predicted probability of class 1, the black line where it is 0.5; "
                "circles are training points, triangles validation, squares test.",
}


@dataclass
class ExperimentReport:
    name: str
    cfg: RunConfig
    runs: list[dict[str, Any]]
    expected: int
    finding: str
    figures: dict[str, Path] = field(repr=False)  # PNG files by kind
    sizes: list[int] | None = None  # layer widths, input to output (None: varied or unknown)


@dataclass
class Report:
    path: Path
    experiments: list[ExperimentReport]


def build_report(out_dir: str | Path, data_for: Callable[[RunConfig], Dataset] | None = None,
                 histories: Mapping[str, dict[str, Any]] | None = None) -> Report:
    """Write ``report.html`` and the figures as PNG files for the runs stored in ``out_dir``;
    ``histories``: those of the runs already in memory, not read again."""
    from trainlab.plots import save_png

    out_dir = Path(out_dir)
    data_for = data_for or DataCache()
    sections = []
    with open_store(out_dir) as store:
        for e in store.experiments():
            name = e["experiment"]
            cfg = config_from_dict(tomllib.loads(e["config_toml"]), source=f"{store.path} ({name})")
            runs = store.runs(name)
            figures: dict[str, Path] = {}
            finding = "No finished runs yet."
            data = data_for(cfg)
            sizes = None if "model.hidden" in cfg.grid else layer_sizes(cfg.model, data.in_dim, data.n_classes)
            if runs:
                curves = store.curves(runs, histories)
                finding = experiment_finding(name, cfg, runs, data.n_classes, curves)
                for kind, draw in figure_drawers(name, runs, curves, cfg, data_for).items():
                    figures[kind] = save_png(draw(store), out_dir / f"{name}-{kind}.png")
            sections.append(ExperimentReport(name, cfg, runs, len(expand(cfg)), finding, figures, sizes))
    path = write_atomic(out_dir / REPORT_NAME, [render(sections, out_dir).encode()])
    return Report(path, sections)


def figure_drawers(experiment: str, runs: list[dict[str, Any]], curves: Mapping[str, list[dict[str, Any]]],
                   cfg: RunConfig, data_for: Callable[[RunConfig], Dataset]) -> dict[str, Callable[[Store], Any]]:
    """Every figure of an experiment by kind: ``loss``, ``boundary`` (2-D data), ``confusion``
    (classification), ``sweep``, ``lr``; a search's ``search`` and (halving, PBT) ``rungs``. Each is a
    function drawing its matplotlib Figure from the store holding the runs' weights and metrics;
    ``curves`` maps each group to the histories of its runs."""
    from trainlab.plots import boundary_figure, confusion_figure, loss_figure, lr_figure, sweep_figure

    if cfg.search:
        from trainlab.search_plots import curves_figure, scatter_figure

        drawers = {"search": lambda _: scatter_figure(experiment, cfg, trials(runs), ranked(runs))}
        if cfg.search.method in ("halving", "pbt"):
            drawers["rungs"] = lambda _: curves_figure(experiment, cfg, trials(runs), curves)
        return drawers
    ss = settings(runs)
    sweep = numeric_sweep(ss)
    task = cfg.data.task
    drawers = {"loss": lambda _: loss_figure(experiment, ss, curves, sequential=sweep is not None, task=task)}
    if sweep:
        drawers["sweep"] = lambda _: sweep_figure(experiment, sweep, ss)
    if any(np.ptp(curves[s.runs[0]["group"]][0]["lr"]) > 0 for s in ss):
        drawers["lr"] = lambda _: lr_figure(experiment, ss, curves)
    if len(data_for(cfg).columns) == 2:
        drawers["boundary"] = lambda store: boundary_figure(experiment, ss, cfg, data_for, store.params)
    if task == "classification":
        drawers["confusion"] = lambda store: confusion_figure(experiment, ss, cfg, data_for, store.metrics)
    return drawers


def open_store(out_dir: Path) -> Store:
    """The directory's store, or BadInput naming what is wrong (without creating anything)."""
    if not out_dir.is_dir():
        raise BadInput(f"{out_dir}: no such directory (expected an output directory of trainlab run or lab)")
    if not (out_dir / STORE_NAME).is_file():
        raise BadInput(f"{out_dir}: no {STORE_NAME} here (expected an output directory of trainlab run or lab)")
    return Store(out_dir)


def best_toml(out_dir, experiment: str | None = None) -> str:
    """The best finished trial of a search in ``out_dir`` as a config for ``trainlab run``, with
    what it scored in comments at the top."""
    with open_store(Path(out_dir)) as store:
        searches = {e["experiment"]: e["config_toml"] for e in store.experiments()
                    if "search" in tomllib.loads(e["config_toml"])}
        if not searches:
            raise BadInput(f"{out_dir}: no search here (expected the output directory of a config with [search])")
        if experiment is None and len(searches) > 1:
            raise BadInput(f"{out_dir}: several searches ({', '.join(searches)}): name one with --experiment")
        name = experiment or next(iter(searches))
        if name not in searches:
            raise BadInput(f"--experiment {name!r}: no such search in {out_dir} (found: {', '.join(searches)})")
        runs = store.runs(name)
    cfg = config_from_dict(tomllib.loads(searches[name]), source=f"{out_dir} ({name})")
    best = ranked(runs)
    if not best:
        raise BadInput(f"{out_dir}: no trial of {name} finished yet (resume it with --resume)")
    t = best[0]
    seeds = f" over {len(t.runs)} seeds" if len(t.runs) > 1 else ""
    head = (f"# best of {len(trials(runs))} trials of {name} ({cfg.search.method}): {t.group}\n"
            f"# val loss {t.score():.6g}, val accuracy {t.score('final_val_acc'):.4g}{seeds} after {t.epochs} epochs\n"
            f"# {values_label(t.values)}\n")
    return head + to_toml(with_values(cfg, t.values, f"best trial {t.group}"))


# ---------------------------------------------------------------------------- HTML


def render(sections: list[ExperimentReport], out_dir: Path) -> str:
    n_runs = sum(len(s.runs) for s in sections)
    expected = sum(s.expected for s in sections)
    seconds = sum(r["seconds"] for s in sections for r in s.runs if math.isfinite(r["seconds"]))
    duration = f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    incomplete = "" if n_runs == expected else (
        f'<p class="warn">{expected - n_runs} of {expected} runs are not finished yet: resume with '
        f"<code>--resume --out {html.escape(str(out_dir))}</code>, then this report is rebuilt.</p>")
    body = "\n".join(_section(s) for s in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trainlab report — {html.escape(out_dir.name)}</title>
<style>{CSS}</style></head>
<body><main>
<header>
<h1>trainlab lab report</h1>
<p class="sub">{html.escape(str(out_dir.resolve()))} · {n_runs} runs in {len(sections)} experiments ·
{duration} of training · written {time.strftime('%Y-%m-%d %H:%M')}</p>
{incomplete}
</header>
<section class="card" id="overview">
<h2>Overview</h2>
{_overview(sections)}
<details class="howto"><summary>How to read this report</summary>
<ul>
<li>Every setting was trained from several seeds (different initial weights and data order); the
same seed always gives the same numbers.</li>
<li><b>mean ± CI</b> in the tables is the mean over seeds with its 95% confidence interval
(Student's t): where the true mean is likely to lie. More seeds make it narrower.</li>
<li>The shaded bands of the loss curves are ±1 standard deviation: how much single runs vary.</li>
<li>A finding calls a difference <b>beyond noise</b> only when Welch's t-test gives p &lt; 0.05;
otherwise the settings are <b>within noise</b> and these seeds cannot tell them apart.</li>
<li>Loss is the mean cross-entropy, or the mean squared error of a regression (lower is better); accuracies are on the named split;
“final” means the last epoch. <i>diverged</i> runs (train loss NaN/inf, or above 100× the untrained model's) are left out of the statistics.</li>
</ul></details>
</section>
{body}
<footer>Made by <code>trainlab</code>. Rebuild with <code>trainlab report {html.escape(str(out_dir))}</code>.</footer>
</main></body></html>
"""


def _overview(sections: list[ExperimentReport]) -> str:
    rows = []
    for s in sections:
        metric = focus(s.name)
        ss = [x for x in settings(s.runs) if x.ok_runs]
        best = _best(ss, metric)
        best_text = (f"{html.escape(best.label)} <span class=num>{fmt(best.estimate(metric), metric)}</span>"
                     if best else "–")
        rows.append(
            f'<tr><td><a href="#{s.name}">{s.name}</a></td><td>{html.escape(s.cfg.description)}</td>'
            f"<td class=num>{len(settings(s.runs)) or '–'} × {len(s.cfg.seed_list)}</td>"
            f"<td class=num>{len(s.runs)}/{s.expected}</td><td>{METRIC_NAMES[metric]}</td><td>{best_text}</td></tr>")
    return ("<table><thead><tr><th>experiment</th><th>question</th><th>settings × seeds</th><th>runs</th>"
            "<th>judged on</th><th>best setting (mean ± 95% CI)</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _best(ss: list[Setting], metric: str) -> Setting | None:
    return min(ss, key=rank_key(metric)) if ss else None


def _section(s: ExperimentReport) -> str:
    figures = "".join(
        f'<figure><img alt="{s.name} {kind}" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
        f"<figcaption>{FIGURE_CAPTIONS[kind]}</figcaption></figure>"
        for kind, png in sorted(s.figures.items(), key=lambda kv: list(FIGURE_CAPTIONS).index(kv[0])))
    return f"""<section class="card" id="{s.name}">
<h2>{s.name}</h2>
<p class="question">{html.escape(s.cfg.description)}</p>
<p class="setup">{html.escape(_setup(s.cfg, s.sizes))}</p>
<div class="finding"><b>Finding.</b> {html.escape(s.finding)}</div>
{_table(s)}
{_scores_table(s)}
{figures}
<details><summary>Full config (TOML)</summary><pre>{html.escape(to_toml(s.cfg))}</pre></details>
</section>"""


def _table(s: ExperimentReport) -> str:
    if not s.runs:
        return ""
    if s.cfg.search:
        return _search_table(s)
    ss = settings(s.runs)
    metrics = [m for m in TABLE_METRICS if any(r[m] is not None for r in s.runs)]
    focus_metric = focus(s.name)
    best = _best([x for x in ss if x.ok_runs], focus_metric)
    head = "".join(f"<th{' class=focus' if m == focus_metric else ''}>{METRIC_NAMES[m]}</th>" for m in metrics)
    rows = []
    for x in ss:
        status = f"{len(x.runs)}" + (f' <span class="bad">({x.diverged} diverged)</span>' if x.diverged else "")
        cells = "".join(
            f"<td class='num{' focus' if m == focus_metric else ''}'>"
            f"{'<b>' if x is best and m == focus_metric else ''}{fmt(x.estimate(m), m)}"
            f"{'</b>' if x is best and m == focus_metric else ''}</td>" for m in metrics)
        epochs = sorted(r["best_epoch"] for r in x.ok_runs)
        best_epoch = epochs[len(epochs) // 2] if epochs else "–"
        rows.append(f"<tr><td>{html.escape(x.label)}</td><td class=num>{status}</td>{cells}"
                    f"<td class=num>{best_epoch}</td></tr>")
    return (f"<table><thead><tr><th>setting</th><th>seeds</th>{head}<th>best epoch (median)</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f"<p class=note>Final metrics at the last epoch, mean ± 95% CI over seeds; "
            f"the highlighted column is what the finding ranks by.</p>")


def _scores_table(s: ExperimentReport) -> str:
    """Macro F1 (classification) or RMSE, MAE and R² (regression) of the returned models on the val
    and test splits, mean ± 95% CI over seeds."""
    columns = [m for m in SUMMARY_METRICS if any(r[m] is not None for r in s.runs)]
    if not columns or s.cfg.search:  # a search's trials: the search table has them
        return ""
    head = "".join(f"<th>{METRIC_NAMES[m]}</th>" for m in columns)
    rows = []
    for x in settings(s.runs):
        cells = "".join(f"<td class=num>{fmt(x.estimate(m), m)}</td>" for m in columns)
        rows.append(f"<tr><td>{html.escape(x.label)}</td>{cells}</tr>")
    return (f"<table class=scores><thead><tr><th>setting</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<p class=note>The returned model (the best epoch's, where early stopping restores it) on each split, "
            "mean ± 95% CI over seeds: macro F1 is the mean of the classes' F1 scores, so a class the model "
            "neglects counts as much as a large one.</p>")


SEARCH_TABLE_ROWS = 10


def _search_table(s: ExperimentReport) -> str:
    """The best trials that trained to the end, with their sampled values."""
    keys = list(s.cfg.search.space)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for t in ranked(s.runs)[:SEARCH_TABLE_ROWS]:
        values = "".join(f"<td class=num>{html.escape(format_value(t.values[k]))}</td>" for k in keys)
        rows.append(f"<tr><td>{t.group}</td>{values}<td class=num>{t.epochs}</td>"
                    f"<td class='num focus'>{t.score():.4g}</td><td class=num>{t.score('final_val_acc'):.1%}</td></tr>")
    return (f"<table><thead><tr><th>trial</th>{head}<th>epochs</th><th class=focus>val loss</th>"
            f"<th>val accuracy</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p class=note>The best {SEARCH_TABLE_ROWS} trials that trained to the last epoch, by val loss "
            f"(mean over seeds). <code>trainlab best DIR</code> prints the best one's config.</p>")


def _setup(cfg: RunConfig, sizes: list[int] | None) -> str:
    d, m, o, t = cfg.data, cfg.model, cfg.optim, cfg.train
    data = (f"{Path(d.path).name} (CSV)" if d.name == "csv" else d.name if d.name in FIXED_DATASETS
            else f"{d.name}, {d.n_samples} points")
    if d.name == "function":
        data += f", curve {d.function or DEFAULT_FUNCTION}"
    if d.noise is not None:
        data += f", noise {d.noise:g}"
    split = "/".join(f"{f * 100:g}" for f in d.split)
    hidden = "→".join(map(str, sizes)) if sizes else "see the settings"
    batch = "full batch" if t.batch_size == 0 else f"batch {t.batch_size}"
    grid = ", ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in cfg.grid.items())
    if cfg.search:
        searched = f"{cfg.search.method} search of {cfg.search.trials} trials, " + ", ".join(
            f"{k} ~ {kind} {values}" for k, d in cfg.search.space.items() for kind, values in d.items())
        grid = "; ".join(filter(None, [grid, searched]))
    return (f"Data: {data}, split {split}, scaling {d.scale}. Model: {hidden}, {m.activation_label}"
            f"{f', dropout {m.dropout}' if any(m.dropouts) else ''}, init {m.init}. "
            f"Optimizer: {o.name}, lr {o.lr:g}, schedule {o.schedule.name}. {t.epochs} epochs, {batch}, "
            f"{len(cfg.seed_list)} seeds." + (f" Varied: {grid}." if grid else ""))


CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --accent:#2563eb; --bg:#f5f7fa; --good:#0f766e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }
header h1 { margin: 0 0 4px; font-size: 28px; letter-spacing: -0.01em; }
.sub { color: var(--muted); margin: 0 0 18px; font-size: 13px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px;
  margin: 0 0 22px; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
h2 { margin: 0 0 6px; font-size: 21px; }
.question { margin: 0 0 4px; font-weight: 500; }
.setup { margin: 0 0 14px; color: var(--muted); font-size: 13px; }
.finding { background: #eff6ff; border-left: 4px solid var(--accent); padding: 12px 16px; border-radius: 6px;
  margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: 13.5px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, .num { font-variant-numeric: tabular-nums; white-space: nowrap; }
th.focus, td.focus { background: #f0fdf4; }
tbody tr:hover { background: #fafbfc; }
.note { color: var(--muted); font-size: 12px; margin: 2px 0 14px; }
.bad, .warn { color: #b91c1c; }
figure { margin: 14px 0 6px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 12.5px; text-align: center; margin-top: 4px; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--accent); font-size: 13.5px; }
pre { background: #f8fafc; border: 1px solid var(--line); padding: 10px 12px; border-radius: 6px;
  font-size: 12px; overflow-x: auto; }
.howto ul { margin: 6px 0 0; padding-left: 20px; font-size: 13.5px; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
code { font-size: 12.5px; background: #f1f5f9; padding: 1px 4px; border-radius: 4px; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; margin-top: 26px; }
"""

