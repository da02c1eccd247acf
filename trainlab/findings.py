"""Findings: a paragraph per experiment, written from the measured numbers, not from what an experiment
*should* show: the settings ranked by the experiment's focus metric (mean ± 95% CI over seeds), whether
one leads the next beyond noise (Welch's t-test), settings stuck at chance level, diverged seeds, the
shape of a learning-rate sweep, the overfit sanity check; for a search, what it trained and kept.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from trainlab import metrics
from trainlab.config import RunConfig, format_value, rungs, short_key, values_label
from trainlab.stats import Estimate, mean_ci, welch_p

ALPHA = 0.05  # a difference is "beyond noise" when Welch's p < ALPHA
DIVERGED = "(the loss became NaN/inf or rose far above its start)"

# What each built-in experiment is about. The notebooks compare *training* loss curves for
# initialisation, optimizers and learning rates; the overfit check is about train accuracy.
# Anything else (a user's config) is judged on validation loss.
FOCUS = {
    "initialization": "final_train_loss",
    "optimizers": "final_train_loss",
    "learning_rates": "final_train_loss",
    "xor_sgd_vs_adam": "final_train_loss",
    "overfit_check": "final_train_acc",
}
OVERFIT_TARGET = 0.99  # the sanity check passes when train accuracy reaches this
KEY_NAMES = {"optim.name": "optimizer", "optim.lr": "learning rate", "optim.schedule.name": "schedule",
             "model.hidden": "depth", "model.activation": "activation", "model.init": "initialisation"}

METRIC_NAMES = {
    "final_train_loss": "train loss",
    "final_val_loss": "val loss",
    "final_train_acc": "train accuracy",
    "final_val_acc": "val accuracy",
    "test_acc": "test accuracy",
    # the returned model's scores (trainlab.metrics): macro F1, or RMSE, MAE and R²
    **{f"{split}_{m}": f"{split} {metrics.METRIC_NAMES[m]}" for split in metrics.SPLITS
       for ms in metrics.TASK_METRICS.values() for m in ms},
}


def focus(experiment: str) -> str:
    return FOCUS.get(experiment, "final_val_loss")


def lower_is_better(metric: str) -> bool:
    return metric.endswith(("loss", "rmse", "mae"))


def rank_key(metric: str) -> Callable[[Setting], float]:
    """Sort key of settings by their mean ``metric``, best first."""
    sign = 1 if lower_is_better(metric) else -1
    return lambda s: sign * s.estimate(metric).mean


# ---------------------------------------------------------------------------- settings


def by_group(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs of each grid point, in grid order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[r["group"]].append(r)
    return dict(groups)


def setting_label(grid: dict[str, Any]) -> str:
    """A reader's name for a grid point: ``relu``, ``lr=0.05``, ``2 hidden layers (32, 32)``."""
    return ", ".join(_value_label(key, value, grid) for key, value in grid.items()) or "all runs"


def _value_label(key: str, value: Any, grid: dict[str, Any]) -> str:
    if key == "model.hidden":
        layers = "layer" if len(value) == 1 else "layers"
        return f"{len(value)} hidden {layers} ({', '.join(map(str, value))})" if value else "logistic regression"
    if isinstance(value, str) and len(grid) == 1:
        return value
    if isinstance(value, str) and key.endswith(".name"):
        return f"{value} schedule" if key == "optim.schedule.name" else value
    return f"{short_key(key, grid)}={format_value(value)}"


@dataclass
class Setting:
    label: str
    grid: dict[str, Any]
    runs: list[dict[str, Any]]

    def estimate(self, metric: str) -> Estimate:
        """Mean ± 95% CI over the seeds that have the metric (a run stored before metrics were kept has none)."""
        return mean_ci(r[metric] for r in self.ok_runs if r[metric] is not None)

    def values(self, metric: str) -> list[float]:
        return [r[metric] for r in self.ok_runs]

    @property
    def ok_runs(self) -> list[dict[str, Any]]:
        """The runs with a final value: not diverged, nor pruned by a search before the last epoch."""
        return [r for r in self.runs if r["status"] not in ("diverged", "pruned")]

    @property
    def diverged(self) -> int:
        return sum(r["status"] == "diverged" for r in self.runs)

    @property
    def pruned(self) -> int:
        return sum(r["status"] == "pruned" for r in self.runs)


def settings(runs: list[dict[str, Any]]) -> list[Setting]:
    return [Setting(setting_label(rs[0]["grid"]), rs[0]["grid"], rs) for rs in by_group(runs).values()]


# ---------------------------------------------------------------------------- the table of settings


@dataclass(repr=False)
class Summary:
    """Final metrics of each setting, mean ± 95% CI over its seeds (without pandas): ``rows`` hold the
    numbers (``row["final_val_acc"]`` is an ``Estimate``); ``str()`` is a text table, a notebook shows HTML."""

    rows: list[dict[str, Any]]  # experiment, setting, seeds, diverged, and an Estimate per metric
    metrics: list[str]

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        several = len({r["experiment"] for r in self.rows}) > 1
        head = [*(["experiment"] if several else []), "setting", "seeds",
                *(f"{METRIC_NAMES[m]} (mean ± 95% CI)" for m in self.metrics)]
        body = [[*([r["experiment"]] if several else []), r["setting"],
                 f"{r['seeds']}" + (f" ({r['diverged']} diverged)" if r["diverged"] else "")
                 + (f" ({r['pruned']} pruned)" if r["pruned"] else ""),
                 *(fmt(r[m], m) for m in self.metrics)] for r in self.rows]
        return head, body

    def __str__(self) -> str:
        head, body = self._cells()
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        n_text = len(head) - len(self.metrics) - 1  # text columns left-aligned, numbers right, as one reads them

        def line(row: list[str]) -> str:
            return "  ".join(c.ljust(w) if i < n_text else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)])

    __repr__ = __str__  # the table, also where only plain text is shown

    def _repr_html_(self) -> str:
        head, body = self._cells()

        def cells(row: list[str], tag: str) -> str:
            return "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)

        return (f"<table><thead><tr>{cells(head, 'th')}</tr></thead><tbody>"
                + "".join(f"<tr>{cells(row, 'td')}</tr>" for row in body) + "</tbody></table>")


def summarize(runs: list[dict[str, Any]]) -> Summary:
    """The ``Summary`` of stored runs (``Results.runs()``), one row per setting in grid order."""
    metrics = [m for m in METRIC_NAMES if any(r.get(m) is not None and math.isfinite(r[m]) for r in runs)]
    rows = []
    for experiment in dict.fromkeys(r["experiment"] for r in runs):
        for s in settings([r for r in runs if r["experiment"] == experiment]):
            rows.append({"experiment": experiment, "setting": s.label, "seeds": len(s.runs),
                         "diverged": s.diverged, "pruned": s.pruned,
                         **{m: s.estimate(m) for m in metrics}})
    return Summary(rows, metrics)


# ---------------------------------------------------------------------------- numbers as text


def fmt(e: Estimate, metric: str) -> str:
    """``0.264 ± 0.026`` (losses) or ``89.3 ± 1.2%`` (accuracies), precision set by the CI."""
    scale, unit = (100.0, "%") if metric.endswith("acc") else (1.0, "")
    if e.n == 0:
        return "n/a"
    mean = e.mean * scale
    if 0 < abs(mean) < 0.01 and not unit:  # a loss near zero: significant digits, not decimals
        return f"{mean:.2g}" + (f" ± {e.ci:.1g}" if math.isfinite(e.ci) else "")
    if not math.isfinite(e.ci):
        return f"{mean:.{2 if unit else 3}f}{unit}"
    ci = e.ci * scale
    digits = 1 if unit else 2
    if ci > 10.0 ** -(digits + 2):  # below that the seeds agree to every digit shown
        digits = max(digits, min(4, 1 - math.floor(math.log10(ci))))
    return f"{mean:.{digits}f} ± {ci:.{digits}f}{unit}"


def fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def compare(a: Setting, b: Setting, metric: str) -> str:
    """Whether ``a`` and ``b`` differ beyond seed noise, in words."""
    p = welch_p(a.values(metric), b.values(metric))
    ea, eb = a.estimate(metric), b.estimate(metric)
    if math.isnan(p):
        return f"{a.label} vs {b.label}: too few seeds to test"
    gap = abs(ea.mean - eb.mean)
    gap_text = f"{gap * 100:.1f} points" if metric.endswith("acc") else f"{gap:.3g}"
    if p < ALPHA:
        return f"the gap between {a.label} and {b.label} ({gap_text}) is beyond seed noise (Welch t-test {fmt_p(p)})"
    overlap = "their 95% CIs overlap and " if ea.overlaps(eb) else ""
    return (f"{a.label} and {b.label} are within noise of each other ({overlap}Welch t-test {fmt_p(p)}): "
            f"these seeds cannot tell them apart")


# ---------------------------------------------------------------------------- the paragraph


def experiment_finding(experiment: str, cfg: RunConfig, runs: list[dict[str, Any]], n_classes: int,
                       curves: dict[str, list[dict[str, np.ndarray]]]) -> str:
    """The report's paragraph on an experiment: a search's (``search_finding``) or a grid's."""
    if cfg.search:
        return search_finding(cfg, runs)
    return write_finding(experiment, runs, cfg.train.epochs, n_classes, curves)


def write_finding(experiment: str, runs: list[dict[str, Any]], epochs: int, n_classes: int = 2,
                  curves: dict[str, list[dict[str, np.ndarray]]] | None = None) -> str:
    """One paragraph on what the runs of ``experiment`` show (``curves``: histories by group)."""
    if not runs:
        return "No finished runs yet."
    metric = focus(experiment)
    name = METRIC_NAMES[metric]
    ss = settings(runs)
    n_seeds = max(len(s.runs) for s in ss)
    sentences = []

    sweep = numeric_sweep(ss)
    scored = [s for s in ss if s.ok_runs]
    ordered = scored if sweep else sorted(scored, key=rank_key(metric))
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if not scored:
        sentences.append(f"Every run diverged before epoch {epochs}, so there is no {name} to compare.")
    else:
        listing = (fmt(scored[0].estimate(metric), metric) if len(ss) == 1 and not ss[0].grid  # no names to list
                   else ", ".join(f"{s.label} {fmt(s.estimate(metric), metric)}" for s in ordered))
        sentences.append(f"At epoch {epochs}, {name} (mean ± 95% CI over {seeds}): {listing}.")

    for s in ss:
        if s.diverged:
            rest = f"; the numbers use the other {len(s.ok_runs)}" if s.ok_runs else ""
            who = f"{s.label}: " if s.grid else ""
            sentences.append(f"{who}{s.diverged} of {len(s.runs)} seeds diverged {DIVERGED}{rest}.")
    sentences += _stuck_at_chance(scored, n_classes)

    if experiment == "overfit_check":
        sentences.append(_overfit_verdict(ss))
    elif sweep:
        sentences.append(_sweep_shape(sweep, scored, metric))
    elif len(ordered) >= 2:
        per_value = _best_per_value(scored, metric)
        if per_value:  # several keys: compare the best of each value rather than every neighbour
            sentences += per_value
        else:
            pairs = [compare(a, b, metric) for a, b in zip(ordered, ordered[1:])]
            sentences.append(f"On {name}, {'; '.join(pairs)}.")
    if curves and len(scored) <= 6 and any(k.startswith("optim.") for k in ss[0].grid):
        sentences.append(_speed(curves, scored))
    return " ".join(filter(None, sentences))


def _stuck_at_chance(ss: list[Setting], n_classes: int) -> list[str]:
    """Settings whose train loss never left ln k, the loss of a uniform guess."""
    chance = math.log(n_classes)
    out = []
    for s in ss:
        e = s.estimate("final_train_loss")
        if abs(e.mean - chance) < 0.01 * chance:
            out.append(f"{s.label if s.grid else 'The model'} never leaves chance level: its train loss stays at "
                       f"{e.mean:.3f} ≈ ln {n_classes}, the loss of a uniform guess, so it has learned nothing.")
    return out


def _best_per_value(ss: list[Setting], metric: str) -> list[str]:
    """In a grid of several keys: the best setting for each value of each key, compared."""
    keys = [k for k in ss[0].grid if len({format_value(s.grid[k]) for s in ss}) > 1]
    if len(keys) < 2:
        return []
    score = rank_key(metric)
    out = []
    for key in keys:
        best: dict[str, Setting] = {}
        for s in ss:
            v = format_value(s.grid[key])
            if v not in best or score(s) < score(best[v]):
                best[v] = s
        champions = sorted(best.values(), key=score)
        if len(champions) >= 2:
            listing = ", ".join(f"{s.label} ({fmt(s.estimate(metric), metric)})" for s in champions)
            out.append(f"Best of each {KEY_NAMES.get(key, short_key(key, ss[0].grid))}: {listing}; "
                       f"{compare(champions[0], champions[1], metric)}.")
    return out


def numeric_sweep(ss: list[Setting]) -> str | None:
    """The key of a one-key grid over ≥ 4 numbers (a sweep to read as a curve), else None."""
    keys = list(ss[0].grid)
    if len(keys) != 1 or len(ss) < 4:
        return None
    numeric = all(isinstance(s.grid[keys[0]], (int, float)) and not isinstance(s.grid[keys[0]], bool) for s in ss)
    return keys[0] if numeric else None


def _sweep_shape(key: str, ss: list[Setting], metric: str) -> str:
    """U-shaped, monotone or flat: where the optimum lies and whether both ends are worse."""
    leaf = key.rsplit(".", 1)[-1]
    score = rank_key(metric)
    ss = sorted(ss, key=lambda s: s.grid[key])
    best = min(ss, key=score)
    first, last = ss[0], ss[-1]
    name = METRIC_NAMES[metric]
    verdicts = []
    for end in (first, last):
        if end is best:
            continue
        p = welch_p(end.values(metric), best.values(metric))
        verdicts.append((end, score(end) - score(best) > 0 and p < ALPHA, p))
    extreme = "lowest" if lower_is_better(metric) else "highest"
    text = f"The {name} is {extreme} at {best.label} ({fmt(best.estimate(metric), metric)})"
    if best not in (first, last) and all(w for _, w, _ in verdicts):
        ends = " and ".join(f"{e.label} ({fmt(e.estimate(metric), metric)}, {fmt_p(p)})" for e, _, p in verdicts)
        return (f"{text}; both ends are worse beyond noise — {ends} — so final {name} against {leaf} "
                f"is U-shaped: too small a {leaf} has not got far yet, too large a one overshoots.")
    if best in (first, last):
        return f"{text}, an end of the sweep: no U-shape in this range; extend the sweep past {best.label}."
    flat = [f"{e.label} ({fmt_p(p)})" for e, worse, p in verdicts if not worse]
    verb = "is" if len(flat) == 1 else "are"
    return (f"{text}; {' and '.join(flat)} {verb} within noise of it, so only part of a U shows in this range "
            f"(more seeds would tell).")


def _overfit_verdict(ss: list[Setting]) -> str:
    out = []
    for s in ss:
        hit = sum(r["final_train_acc"] >= OVERFIT_TARGET for r in s.runs)
        train, val = s.estimate("final_train_acc"), s.estimate("final_val_acc")
        verdict = ("the check passes: the model and training loop can fit a small data set" if hit == len(s.runs)
                   else "the check FAILS: a net this size should fit so few points — look for a bug "
                   "(labels, loss, learning rate, a missing optimizer step)")
        out.append(f"Train accuracy reaches ≥ {OVERFIT_TARGET:.0%} in {hit} of {len(s.runs)} seeds "
                   f"(mean {fmt(train, 'final_train_acc')}) — {verdict}. Val accuracy {fmt(val, 'final_val_acc')} "
                   f"is what memorising the training points is worth on new ones.")
    return " ".join(out)


def _speed(curves: dict[str, list[dict[str, np.ndarray]]], ss: list[Setting]) -> str:
    """How many epochs each setting needs to get as far as the slowest one gets in all of them."""
    means = {}
    for s in ss:  # the runs of a group and its curves are in the same order
        table = [h["train_loss"] for r, h in zip(s.runs, curves.get(s.runs[0]["group"], []))
                 if r["status"] != "diverged"]
        if table:
            length = min(len(t) for t in table)
            means[s.label] = np.mean([t[:length] for t in table], axis=0)
    finals = [m[-1] for m in means.values() if np.isfinite(m[-1])]
    if not finals:
        return ""
    target = max(finals)
    reached = []
    for label, m in means.items():
        hits = np.flatnonzero(m <= target)
        reached.append((hits[0] + 1 if len(hits) else math.inf, label))
    reached.sort()
    listing = ", ".join(f"{label} at epoch {int(at)}" if math.isfinite(at) else f"{label} never"
                        for at, label in reached)
    return (f"Speed: the mean train loss first falls to {target:.3g} (where the slowest setting ends) "
            f"— {listing}.")


# ---------------------------------------------------------------------------- a search's trials


@dataclass
class Trial:
    """A trial's stored runs (one per seed) and its sampled values."""

    group: str
    values: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def finished(self) -> bool:
        """Trained to the last epoch (or stopped early by its own early stopping) on every seed."""
        return all(r["status"] in ("ok", "early_stopped") for r in self.runs)

    @property
    def status(self) -> str:
        return self.runs[0]["status"] if len({r["status"] for r in self.runs}) == 1 else "mixed"

    @property
    def epochs(self) -> int:
        return max(r["epochs_run"] for r in self.runs)

    def score(self, metric: str = "final_val_loss") -> float:
        """The mean of ``metric`` over the seeds (at the epoch each stopped); NaN if one is not finite."""
        values = [r[metric] for r in self.runs]
        return float(np.mean(values)) if all(v is not None and math.isfinite(v) for v in values) else math.nan


def trials(runs: list[dict[str, Any]]) -> list[Trial]:
    return [Trial(group, rs[0]["grid"], rs) for group, rs in by_group(runs).items()]


def ranked(runs: list[dict[str, Any]]) -> list[Trial]:
    """The finished trials, best first by their mean val loss over the seeds; pruned and diverged
    trials have no final value to rank."""
    return sorted((t for t in trials(runs) if t.finished and math.isfinite(t.score())), key=Trial.score)


def search_finding(cfg: RunConfig, runs: list[dict[str, Any]]) -> str:
    """A paragraph on a search: how much it trained, the best trial, and (halving) what each rung kept."""
    search, epochs = cfg.search, cfg.train.epochs
    if not runs:
        return "No finished trials yet."
    everything = len(runs) * epochs
    spent = sum(r["epochs_run"] for r in runs)
    name = {"random": "Random search", "halving": "Successive halving", "pbt": "Population-based training"}
    all_trials = trials(runs)
    seeds = f", {len(cfg.seed_list)} seeds each" if len(cfg.seed_list) > 1 else ""
    sentences = [f"{name[search.method]} over {', '.join(search.space)}: {len(all_trials)} trials{seeds}, "
                 f"{spent:,} model-epochs of training ({spent / everything:.0%} of the {everything:,} that training "
                 f"every trial for all {epochs} epochs takes)."]
    if search.method == "halving":
        sentences.append(rung_sentence(all_trials, rungs(search, epochs), epochs))
    best = ranked(runs)
    if best:
        t = best[0]
        sentences.append(f"Best trial: {t.group} ({values_label(t.values)}), val loss {t.score():.4g}, "
                         f"val accuracy {t.score('final_val_acc'):.1%} after {t.epochs} epochs"
                         + (f"; the next best: {', '.join(f'{u.group} {u.score():.4g}' for u in best[1:3])}"
                            if len(best) > 1 else "") + ".")
    else:
        sentences.append("No trial finished, so there is no best one.")
    diverged = sum(t.status == "diverged" for t in all_trials)
    if diverged:
        sentences.append(f"{diverged} trials diverged {DIVERGED}.")
    if search.method == "pbt":
        sentences.append(f"Every {search.interval} epochs the worst {search.quantile:.0%} of the trials took the "
                         "weights and optimizer state of one of the best and multiplied its optimizer values by one "
                         f"of {', '.join(f'{f:g}' for f in search.perturb)}: a trial's values are those it ended with.")
    return " ".join(sentences)


def rung_sentence(all_trials: list[Trial], rung_epochs: list[int], epochs: int) -> str:
    alive = [sum(t.epochs >= r for t in all_trials) for r in rung_epochs]
    kept = [sum(t.epochs > r for t in all_trials) for r in rung_epochs]
    steps = "; ".join(f"epoch {r}: {a} → {k}" for r, a, k in zip(rung_epochs, alive, kept))
    return f"Rungs (trials compared → kept on val loss): {steps}; the kept trained to epoch {epochs}."
