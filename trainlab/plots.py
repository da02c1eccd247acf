"""Figures: loss curves with seed bands, decision boundaries, learning-rate histories.

The report and the CLI draw them into PNG files; a notebook gets the same figures inline through
``plot_data``, ``plot_boundary`` and ``plot_history`` (exported as ``tl.plot_*``).
"""

from __future__ import annotations

import io
import math
import os
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import matplotlib
import matplotlib.ticker

# Files need no display, so the CLI and the report draw with Agg (no GUI toolkit, safe in worker
# threads). But not when someone chose a backend: a Jupyter kernel sets MPLBACKEND to its inline
# backend, and forcing Agg there would keep every figure out of the notebook.
if "MPLBACKEND" not in os.environ and "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainlab.config import RunConfig, with_values  # noqa: E402
from trainlab.data import Dataset  # noqa: E402
from trainlab.findings import Setting  # noqa: E402
from trainlab.history import RunResult  # noqa: E402
from trainlab.metrics import RunMetrics, row_normalized  # noqa: E402
from trainlab.models import evaluating, model_from_params  # noqa: E402
from trainlab.stats import band  # noqa: E402

COLORS = plt.get_cmap("tab10").colors
CLASS_COLORS = ["#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214", "#35978f"]

# The y-axis of a history column, by its last word.
AXIS_LABELS = {"acc": "accuracy", "lr": "learning rate", "norm": "gradient norm ‖∇‖₂"}
LOSS_NAMES = {"classification": "cross-entropy loss", "regression": "MSE loss"}  # "loss" columns, by data.task


def representative(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median final val loss: a typical seed, not the luckiest."""
    finite = [r for r in runs if math.isfinite(r["final_val_loss"])] or runs
    ranked = sorted(finite, key=lambda r: (r["final_val_loss"], r["seed"]))
    return ranked[(len(ranked) - 1) // 2]


MOST_PANELS = 12  # settings drawn side by side; hundreds of panels are neither drawable nor readable
MOST_LEGEND = 16


def spread(items: list, most: int) -> list:
    """At most ``most`` of ``items``, evenly spaced in their order, the first and the last among them."""
    return items if len(items) <= most else [items[round(i)] for i in np.linspace(0, len(items) - 1, most)]


def setting_colors(n: int, sequential: bool = False) -> list:
    """Distinct colours, or a dark-to-light ramp for an ordered sweep (small to large values)."""
    if sequential:
        return [plt.get_cmap("viridis")(x) for x in np.linspace(0.0, 0.9, n)]
    return [COLORS[i % len(COLORS)] for i in range(n)]


def plot_loss_curves(ax: plt.Axes, groups: dict[str, list[dict[str, np.ndarray]]], title: str = "",
                     columns: tuple[str, ...] = ("train_loss", "val_loss"), colors: list | None = None,
                     legend: bool = True, styles: list[str] | None = None, task: str = "classification") -> None:
    """A history column per group (loss by default), the mean over seeds with a ±1 std band: train solid,
    val dashed (or ``styles``)."""
    colors = colors or setting_colors(len(groups))
    for i, (color, (label, histories)) in enumerate(zip(colors, groups.items())):
        for column in columns:
            style = styles[i] if styles else "--" if column.startswith("val") else "-"
            epochs, mean, std = band(histories, column)
            split = column.rsplit("_", 1)[0] if len(columns) > 1 else ""
            name = f"{label} ({split})" if label and split else label or split
            ax.plot(epochs, mean, style, color=color, lw=1.8, label=f"{name}, n={len(histories)}")
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    kind = columns[0].rsplit("_", 1)[-1]
    label = LOSS_NAMES[task] if kind == "loss" else AXIS_LABELS[kind]
    seeds = " (mean ± std over seeds)" if any(len(h) > 1 for h in groups.values()) else ""
    ax.set(xlabel="epoch", ylabel=label, title=title or label.capitalize() + seeds)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8, ncol=1 if len(groups) < 4 else 2)


# The boundary's grid goes through the model in chunks of at most this many activations (points ×
# widest layer): 80 MB of float32 however wide the network.
BOUNDARY_ELEMENTS = 20_000_000


@torch.no_grad()
def plot_decision_boundary(ax: plt.Axes, model: torch.nn.Module, data: Dataset, title: str = "", split: str = "all",
                           resolution: int = 200) -> None:
    """Class-1 probability as a heat-map with the 0.5 contour (class regions for k > 2), and the points."""
    raw_all = np.vstack([r for r in (data.raw_train, data.raw_val, data.raw_test) if r is not None])
    lo, hi = raw_all.min(axis=0) - 0.5, raw_all.max(axis=0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = data.prepare(np.c_[xx.ravel(), yy.ravel()])
    dtype = next(model.parameters()).dtype
    widest = max(m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    rows = max(1, BOUNDARY_ELEMENTS // widest)  # points per chunk, so no layer's output exceeds the budget
    with evaluating(model):  # what it predicts: without dropout
        outputs = torch.cat([model(torch.tensor(grid[i : i + rows], dtype=dtype)).double()
                             for i in range(0, len(grid), rows)])
    if data.regression:  # the prediction as a heat-map, the points coloured by their target on the same scale
        z = outputs[:, 0].numpy().reshape(xx.shape)
        span = target_span(data)
        ax.contourf(xx, yy, z, levels=np.linspace(-span, span, 21), cmap="RdBu_r", alpha=0.55, extend="both")
    else:
        probs = torch.softmax(outputs, dim=1).numpy()
        if data.n_classes == 2:
            z = probs[:, 1].reshape(xx.shape)
            ax.contourf(xx, yy, z, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.55)
            ax.contour(xx, yy, z, levels=[0.5], colors="k", linewidths=1.5)
        else:
            z = probs.argmax(axis=1).reshape(xx.shape)
            cmap = matplotlib.colors.ListedColormap(CLASS_COLORS[: data.n_classes])
            ax.contourf(xx, yy, z, levels=np.arange(data.n_classes + 1) - 0.5, cmap=cmap, alpha=0.35)
            ax.contour(xx, yy, z, levels=np.arange(data.n_classes) + 0.5, colors="k", linewidths=1)
    plot_points(ax, data, split)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title, fontsize=10)


def target_span(data: Dataset) -> float:
    """The largest |target| of a regression data set: its colour scale runs from -span to span."""
    targets = np.concatenate([y for y in (data.y_train, data.y_val, data.y_test) if y is not None])
    return max(abs(targets).max(), 1e-9)


def plot_points(ax: plt.Axes, data: Dataset, split: str = "all", legend: bool = False) -> None:
    """The raw points coloured by class (by target for regression, on ``target_span``'s scale): circles
    train, triangles val, squares test (or one ``split``)."""
    if split not in ("all", "train", "val", "test"):
        raise ValueError(f"split {split!r}: expected all, train, val or test")
    points = {"train": (data.raw_train, data.y_train, "o"), "val": (data.raw_val, data.y_val, "^"),
              "test": (data.raw_test, data.y_test, "s")}
    span = target_span(data) if data.regression else None
    for name, (X, y, marker) in points.items():
        if X is None or (split != "all" and name != split):
            continue
        if span is not None:
            ax.scatter(X[:, 0], X[:, 1], c=y, s=12, marker=marker, cmap="RdBu_r", vmin=-span, vmax=span,
                       edgecolor="k", linewidths=0.3, label=name)
            continue
        for k in range(data.n_classes):
            sel = y == k
            ax.scatter(X[sel, 0], X[sel, 1], s=12, marker=marker, color=CLASS_COLORS[k % len(CLASS_COLORS)],
                       edgecolor="k", linewidths=0.3, alpha=0.8, label=f"class {k} ({name})")
    ax.set(xlabel=data.columns[0], ylabel=data.columns[1])
    if legend:
        ax.legend(fontsize=8)


# ---------------------------------------------------------------------------- for notebooks


def _axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> plt.Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def plot_data(data: Dataset, ax: plt.Axes | None = None, split: str = "all", title: str = "") -> plt.Axes:
    """A 2-D data set as a scatter plot, one colour per class and one marker per split."""
    ax = _axes(ax, (5, 4.2))
    plot_points(ax, data, split, legend=True)
    ax.set_title(title, fontsize=10)
    return ax


def plot_boundary(model: torch.nn.Module | RunResult, data: Dataset, ax: plt.Axes | None = None,
                  split: str = "all", title: str = "") -> plt.Axes:
    """The decision boundary of a model (or of a finished run's weights) over ``data``'s points."""
    ax = _axes(ax, (5, 4.2))
    plot_decision_boundary(ax, model.model() if isinstance(model, RunResult) else model, data, title, split)
    return ax


# Up to this many classes a confusion matrix's cells carry their counts (beyond, they are too small to read).
CONFUSION_COUNTS = 12


def plot_confusion(confusion: np.ndarray | list | RunResult, ax: plt.Axes | None = None,
                   class_names: list[str] | None = None, title: str = "", split: str = "test") -> plt.Axes:
    """A confusion matrix: colour is the row-normalised fraction (of class i's points, predicted as
    j), each cell carries its count. ``confusion`` is counts, or a finished run (its ``split``, the
    val split where the data has no test split)."""
    if isinstance(confusion, RunResult):
        split = split if split in confusion.metrics else "val"
        confusion = confusion.metrics[split]["confusion"]
    counts = np.asarray(confusion)
    n = len(counts)
    ax = _axes(ax, (0.45 * n + 2.5, 0.45 * n + 2))
    fractions = row_normalized(counts)
    ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    if n <= CONFUSION_COUNTS:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8 if n > 5 else 10,
                        color="white" if fractions[i, j] > 0.6 else "black")
    labels = class_names if class_names is not None and len(class_names) == n else [str(k) for k in range(n)]
    ax.set_xticks(range(n), labels, fontsize=8, rotation=45 if max(map(len, labels)) > 3 else 0)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(title, fontsize=10)
    return ax


def plot_history(runs: RunResult | list[RunResult] | dict[str, RunResult | list[RunResult]],
                 columns: tuple[str, ...] | list[str] = ("train_loss", "val_loss"), ax: plt.Axes | None = None,
                 title: str = "", log: bool = False) -> plt.Axes:
    """Columns of the per-epoch history (``train_loss``, ``val_acc``, ``lr``, …) against the epoch. ``runs`` is
    one run, the seeds of one setting (a list: drawn as mean ± std), or a dict from a label to either."""
    groups = runs if isinstance(runs, dict) else {"": runs}
    listed = {label: rs if isinstance(rs, list) else [rs] for label, rs in groups.items()}
    histories = {label: [r.history for r in rs] for label, rs in listed.items()}
    task = next(iter(listed.values()))[0].spec.config.data.task
    ax = _axes(ax, (7, 4))
    plot_loss_curves(ax, histories, title=title, columns=tuple(columns),
                     legend=isinstance(runs, dict) or len(columns) > 1, task=task)
    if log:
        log_scale(ax)
    return ax


class PlainLogFormatter(matplotlib.ticker.Formatter):
    """0.2, 0.5, 1 rather than 2×10⁻¹ on a log axis, easier to read for a student; between the
    powers of ten only as many labels as fit: 2 and 5 on an axis of two decades or less, every
    tick on one of about half a decade."""

    def __call__(self, x, pos=None):
        lo, hi = sorted(self.axis.get_view_interval())
        decades = math.log10(hi / lo) if lo > 0 else math.inf
        leading = round(x / 10 ** math.floor(math.log10(x) + 1e-9), 6) if x > 0 else 0
        shown = leading == 1 or (decades <= 2.2 and leading in (2, 5)) or decades <= 0.6
        return f"{x:g}" if shown else ""


def log_scale(ax: plt.Axes, axes: str = "y") -> None:
    """A log scale on ``ax``'s x and/or y axis (``axes``: "x", "y" or "xy"), ticks labelled plainly."""
    for name in axes:
        getattr(ax, f"set_{name}scale")("log")
        axis = getattr(ax, f"{name}axis")
        axis.set_major_formatter(PlainLogFormatter())
        axis.set_minor_formatter(PlainLogFormatter())


def setting_styles(ss: list[Setting], sequential: bool = False) -> tuple[list, list[str] | None]:
    """Colours and line styles: with two grid keys, colour follows the first and style the second."""
    keys = list(ss[0].grid) if ss else []
    if len(keys) != 2:
        return setting_colors(len(ss), sequential), None
    firsts = list(dict.fromkeys(str(s.grid[keys[0]]) for s in ss))
    seconds = list(dict.fromkeys(str(s.grid[keys[1]]) for s in ss))
    palette = setting_colors(len(firsts))
    dashes = ["-", "--", ":", "-."]
    return ([palette[firsts.index(str(s.grid[keys[0]]))] for s in ss],
            [dashes[seconds.index(str(s.grid[keys[1]])) % len(dashes)] for s in ss])


def loss_figure(experiment: str, ss: list[Setting], curves: dict[str, list[dict[str, np.ndarray]]],
                sequential: bool = False, task: str = "classification") -> plt.Figure:
    """Train and val loss side by side, one colour per setting, mean ± std over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colors, styles = setting_styles(ss, sequential)
    groups = {s.label: curves[s.runs[0]["group"]] for s in ss}
    for ax, column in zip(axes, ("train_loss", "val_loss")):
        plot_loss_curves(ax, groups, title=column.replace("_", " "), columns=(column,), colors=colors,
                         legend=False, styles=styles, task=task)
    means = np.concatenate([band(h, c)[1] for h in groups.values() for c in ("train_loss", "val_loss")])
    means = means[np.isfinite(means) & (means > 0)]
    epochs = max(len(h["train_loss"]) for hs in groups.values() for h in hs)
    log_y = len(means) and means.max() / means.min() > 8
    for ax in axes:
        if epochs >= 1000:  # long runs: the early epochs are where the settings part ways
            log_scale(ax, "x")
        if log_y:
            log_scale(ax)
    if len(means):  # a blow-up of a few epochs must not squash every other curve
        top = min(means.max() * (1.3 if log_y else 1.05), np.percentile(means, 99) * 3)
        axes[0].set_ylim(means.min() * 0.8 if log_y else 0, top)
    axes[1].set_ylabel("")
    entries = list(zip(*axes[0].get_legend_handles_labels()))
    shown = spread(entries, MOST_LEGEND)
    title = "setting (seeds)" + ("" if len(shown) == len(entries) else f"\n{len(shown)} of {len(entries)}")
    legend = fig.legend(*zip(*shown) if shown else ((), ()), loc="center right", fontsize=9, frameon=False,
                        title=title, title_fontsize=9)
    fig.suptitle(f"{experiment}: loss per epoch, mean ± 1 std over seeds", fontsize=11)
    legend_width = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.bbox.width
    fig.tight_layout(rect=(0, 0, 1 - legend_width, 1))
    return fig


def typical_seed_panels(ss: list[Setting], per_row: int, figsize: Callable[[int, int], tuple[float, float]],
                        draw: Callable[[plt.Axes, Setting, dict[str, Any]], str | None], title: str,
                        legend: str) -> plt.Figure:
    """A panel for each setting (at most ``MOST_PANELS``) in rows of at most ``per_row``, as even as they
    go (6 in rows of 5: 3 + 3, not 5 + 1), in a figure of ``figsize(cols, rows)``. ``draw(ax, setting, run)``
    draws the setting's typical seed (the run with the median val loss), or returns why it cannot;
    ``legend`` says what the colours mean."""
    shown = spread(ss, MOST_PANELS)
    cols = math.ceil(len(shown) / math.ceil(len(shown) / per_row))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=figsize(cols, rows), squeeze=False)
    for ax, s in zip(axes.flat, shown):
        missing = draw(ax, s, representative(s.runs))
        if missing:
            ax.text(0.5, 0.5, f"{s.label}\n({missing})", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    for ax in list(axes.flat)[len(shown):]:
        ax.set_axis_off()
    note = "" if len(shown) == len(ss) else f" ({len(shown)} of {len(ss)} settings, evenly spaced in grid order)"
    fitted_suptitle(fig, f"{title} of a typical seed (median val loss){note}; {legend}")
    fig.tight_layout()
    return fig


def boundary_figure(experiment: str, ss: list[Setting], cfg: RunConfig,
                    data_for: Callable[[RunConfig], Dataset],
                    params_for: Callable[[str], dict[str, np.ndarray] | None]) -> plt.Figure:
    """The decision boundary of a typical seed of each setting (at most ``MOST_PANELS``), side by side."""

    def draw(ax: plt.Axes, s: Setting, rep: dict[str, Any]) -> str | None:
        params = params_for(rep["run_id"])
        if params is None or rep["status"] == "diverged":
            return "every seed diverged"
        point_cfg = with_values(cfg, rep["grid"], "grid")
        data = data_for(point_cfg)
        score = (f"val MSE {rep['final_val_loss']:.4f}" if data.regression
                 else f"val acc {rep['final_val_acc']:.1%}")
        plot_decision_boundary(ax, model_from_params(point_cfg.model, params), data,
                               title=f"{s.label}\nseed {rep['seed']} · {score}")
        return None

    def figsize(cols: int, rows: int) -> tuple[float, float]:
        size = 3.6 if cols <= 4 else 2.9
        return size * cols, size * rows * 0.95

    legend = ("colour = prediction (points: targets)" if cfg.data.task == "regression"
              else "colour = P(class 1), black line = 0.5" if data_for(cfg).n_classes == 2
              else "colour = predicted class, black lines = boundaries")
    return typical_seed_panels(ss, 6, figsize, draw, f"{experiment}: decision boundary", legend)


def confusion_figure(experiment: str, ss: list[Setting], cfg: RunConfig,
                     data_for: Callable[[RunConfig], Dataset],
                     metrics_for: Callable[[str], RunMetrics | None]) -> plt.Figure:
    """The confusion matrix of a typical seed of each setting (the median val loss, as the boundary
    figure), on the test split (the val split without one), side by side (at most ``MOST_PANELS``)."""

    def draw(ax: plt.Axes, s: Setting, rep: dict[str, Any]) -> str | None:
        run_metrics = metrics_for(rep["run_id"])
        if run_metrics is None:
            return "no metrics stored"
        split = "test" if "test" in run_metrics else "val"
        scores = run_metrics[split]
        plot_confusion(scores["confusion"], ax, data_for(with_values(cfg, rep["grid"], "grid")).class_names,
                       title=f"{s.label}\nseed {rep['seed']} · {split} macro F1 {scores['macro_f1']:.3f}")
        return None

    size = 3.2 if data_for(cfg).n_classes <= 4 else 3.8
    # room under each square panel's two-line title and above its axis label, and for the suptitle
    return typical_seed_panels(ss, 5, lambda cols, rows: (size * cols, (size + 1.2) * rows + 0.4), draw,
                               f"{experiment}: confusion matrix",
                               "colour = fraction of the true class, numbers = counts")


def sweep_figure(experiment: str, key: str, ss: list[Setting]) -> plt.Figure:
    """Final loss against a swept number (log axis), mean with 95% CI bars; diverged seeds counted."""
    ss = sorted(ss, key=lambda s: s.grid[key])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.array([s.grid[key] for s in ss], dtype=float)
    for i, (column, marker) in enumerate((("final_train_loss", "o"), ("final_val_loss", "s"))):
        est = [s.estimate(column) for s in ss]
        mean = np.array([e.mean for e in est])
        ci = np.array([e.ci if np.isfinite(e.ci) else 0.0 for e in est])
        ax.errorbar(x * (1.04 if i else 1 / 1.04), mean, yerr=ci, marker=marker, capsize=4, lw=1.5,
                    color=COLORS[i], label=column.removeprefix("final_").replace("_", " ") + " (95% CI)")
    for s, xi in zip(ss, x):
        if s.diverged:
            ax.annotate(f"{s.diverged}/{len(s.runs)}\ndiverged", (xi, 1), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=8, color="#b2182b")
    log_scale(ax, "xy")
    leaf = key.rsplit(".", 1)[-1]
    ax.set(xlabel=f"{leaf} (log scale)", ylabel="loss at the last epoch (log scale)")
    ax.set_title(f"{experiment}: final loss against {leaf}, mean ± 95% CI over seeds", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def lr_figure(experiment: str, ss: list[Setting], curves: dict[str, list[dict[str, np.ndarray]]]) -> plt.Figure:
    """The learning rate each setting used, epoch by epoch (it is the same for every seed)."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    schedules: dict[tuple, list[str]] = {}  # settings with the same schedule share one line
    for s in ss:
        schedules.setdefault(tuple(curves[s.runs[0]["group"]][0]["lr"]), []).append(s.label)
    for color, (lr, labels) in zip(setting_colors(len(schedules)), schedules.items()):
        ax.plot(np.arange(1, len(lr) + 1), lr, color=color, lw=2, label="\n".join(labels))
    log_scale(ax)
    ax.set(xlabel="epoch", ylabel="learning rate (log scale)")
    ax.set_title(f"{experiment}: learning-rate history", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def fitted_suptitle(fig: plt.Figure, text: str, fontsize: float = 11) -> None:
    """The figure's title, wrapped onto as many lines as a narrow figure (one panel) needs."""
    chars = max(20, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))  # ~0.55 em a character
    fig.suptitle(textwrap.fill(text, chars), fontsize=fontsize)


def png_bytes(fig: plt.Figure) -> bytes:
    # Laid out already (tight_layout), the figure keeps a layout engine that does nothing, for which
    # savefig would draw it once more first. A user's rcParams must not put a real one back.
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def save_png(fig: plt.Figure, path: Path) -> Path:
    path.write_bytes(png_bytes(fig))
    return path
