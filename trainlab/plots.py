"""Figures: loss curves with seed bands, decision boundaries, learning-rate histories."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainlab.config import RunConfig, with_values  # noqa: E402
from trainlab.data import Dataset  # noqa: E402
from trainlab.models import build_model  # noqa: E402

COLORS = plt.get_cmap("tab10").colors
CLASS_COLORS = ["#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214", "#35978f"]


def by_group(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs of each grid point, in grid order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[r["group"]].append(r)
    return dict(groups)


def representative(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median final val loss: a typical seed, not the luckiest."""
    finite = [r for r in runs if math.isfinite(r["final_val_loss"])] or runs
    ranked = sorted(finite, key=lambda r: (r["final_val_loss"], r["seed"]))
    return ranked[(len(ranked) - 1) // 2]


def band(histories: list[dict[str, np.ndarray]], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std of ``column`` across runs; runs that stopped early drop out of later epochs."""
    length = max(len(h[column]) for h in histories)
    table = np.full((len(histories), length), np.nan)
    for i, h in enumerate(histories):
        table[i, : len(h[column])] = h[column]
    with np.errstate(all="ignore"):
        table[~np.isfinite(table)] = np.nan
        counts = np.sum(~np.isnan(table), axis=0)
        mean = np.nansum(table, axis=0) / np.maximum(counts, 1)
        std = np.sqrt(np.nansum((table - mean) ** 2, axis=0) / np.maximum(counts, 1))
    mean[counts == 0] = np.nan
    return np.arange(1, length + 1), mean, std


def plot_loss_curves(ax: plt.Axes, groups: dict[str, list[dict[str, np.ndarray]]], title: str = "") -> None:
    """Train (solid) and val (dashed) loss per group: the mean over seeds with a ±1 std band."""
    for i, (label, histories) in enumerate(groups.items()):
        color = COLORS[i % len(COLORS)]
        n = len(histories)
        for column, style in (("train_loss", "-"), ("val_loss", "--")):
            epochs, mean, std = band(histories, column)
            ax.plot(epochs, mean, style, color=color, lw=1.8,
                    label=f"{label} ({'train' if column == 'train_loss' else 'val'}, n={n})")
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title or "Loss (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=1 if len(groups) < 4 else 2)


def model_from_params(cfg: RunConfig, data: Dataset, params: dict[str, np.ndarray]) -> torch.nn.Module:
    model = build_model(cfg.model, data.in_dim, data.n_classes, dtype=torch.float64)
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()})
    return model.eval()


@torch.no_grad()
def plot_decision_boundary(
    ax: plt.Axes,
    model: torch.nn.Module,
    data: Dataset,
    title: str = "",
    split: str = "all",
    resolution: int = 200,
) -> None:
    """Class-1 probability as a heat-map with the 0.5 contour (class regions for k > 2), and the points."""
    raw_all = np.vstack([r for r in (data.raw_train, data.raw_val, data.raw_test) if r is not None])
    lo, hi = raw_all.min(axis=0) - 0.5, raw_all.max(axis=0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.c_[xx.ravel(), yy.ravel()]
    probs = torch.softmax(model(torch.tensor(data.prepare(grid), dtype=torch.float64)), dim=1).numpy()
    if data.n_classes == 2:
        z = probs[:, 1].reshape(xx.shape)
        ax.contourf(xx, yy, z, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.55)
        ax.contour(xx, yy, z, levels=[0.5], colors="k", linewidths=1.5)
    else:
        z = probs.argmax(axis=1).reshape(xx.shape)
        cmap = matplotlib.colors.ListedColormap(CLASS_COLORS[: data.n_classes])
        ax.contourf(xx, yy, z, levels=np.arange(data.n_classes + 1) - 0.5, cmap=cmap, alpha=0.35)
        ax.contour(xx, yy, z, levels=np.arange(data.n_classes) + 0.5, colors="k", linewidths=1)
    points = {
        "train": (data.raw_train, data.y_train, "o"),
        "val": (data.raw_val, data.y_val, "^"),
        "test": (data.raw_test, data.y_test, "s"),
    }
    for name, (X, y, marker) in points.items():
        if X is None or (split != "all" and name != split):
            continue
        for k in range(data.n_classes):
            sel = y == k
            ax.scatter(X[sel, 0], X[sel, 1], s=12, marker=marker, color=CLASS_COLORS[k % len(CLASS_COLORS)],
                       edgecolor="k", linewidths=0.3, alpha=0.8)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(data.columns[0])
    ax.set_ylabel(data.columns[1])
    ax.set_title(title, fontsize=10)


def save_experiment_plots(
    out_dir: Path,
    experiment: str,
    runs: list[dict[str, Any]],
    store: Any,
    cfg: RunConfig,
    data_for: Callable[[RunConfig], Dataset],
) -> list[Path]:
    """``<experiment>-loss.png`` and, for 2-D data, ``<experiment>-boundary.png``."""
    groups = by_group(runs)
    written = []
    fig, ax = plt.subplots(figsize=(8, 4.8))
    plot_loss_curves(ax, {g: [store.history(r["run_id"]) for r in rs] for g, rs in groups.items()},
                     title=f"{experiment}: loss (mean ± std over seeds)")
    fig.tight_layout()
    written.append(_save(fig, out_dir / f"{experiment}-loss.png"))

    if len(data_for(cfg).columns) == 2:
        n = len(groups)
        cols = min(n, 4)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False)
        for ax, (label, rs) in zip(axes.flat, groups.items()):
            rep = representative(rs)
            params = store.params(rep["run_id"])
            point_cfg = with_values(cfg, rep["grid"], "grid")
            data = data_for(point_cfg)
            if params is None or rep["status"] == "diverged":
                ax.text(0.5, 0.5, f"{label}\n(diverged)", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            model = model_from_params(point_cfg, data, params)
            plot_decision_boundary(ax, model, data, title=f"{label}\nseed {rep['seed']}, val acc {rep['final_val_acc']:.3f}")
        for ax in list(axes.flat)[n:]:
            ax.set_axis_off()
        fig.tight_layout()
        written.append(_save(fig, out_dir / f"{experiment}-boundary.png"))
    return written


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
