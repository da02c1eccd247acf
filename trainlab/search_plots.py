"""A search's figures (``report.figure_drawers`` picks them): the judged metric against each sampled value,
and the trials' val loss by epoch."""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.config import RunConfig, rungs
from trainlab.findings import Trial
from trainlab.plots import COLORS, log_scale, plt

STATUS_COLORS = {"ok": COLORS[0], "early_stopped": COLORS[2], "pruned": "#9aa5b1", "diverged": "#b2182b"}


def scatter_figure(experiment: str, cfg: RunConfig, all_trials: list[Trial], best: list[Trial]) -> plt.Figure:
    """Val loss of each trial (mean over seeds, at the epoch it stopped) against each sampled value."""
    space = cfg.search.space
    fig, axes = plt.subplots(1, len(space), figsize=(4.2 * len(space) + 1, 4), squeeze=False)
    for ax, (key, dist) in zip(axes[0], space.items()):
        (kind, choices), = dist.items()
        jitter = np.random.default_rng(0)
        for status, color in STATUS_COLORS.items():
            chosen = [t for t in all_trials if t.status == status]
            if not chosen:
                continue
            x = [position(t.values[key], kind, choices, jitter) for t in chosen]
            ax.scatter(x, [t.score() for t in chosen], s=14, color=color, alpha=0.8, lw=0,
                       label=f"{status} ({len(chosen)})")
        if best:
            ax.scatter([position(best[0].values[key], kind, choices, jitter)], [best[0].score()], marker="*", s=160,
                       color="#e08214", edgecolor="black", lw=0.6, zorder=3, label=f"best ({best[0].group})")
        if kind == "log_uniform":
            log_scale(ax, "x")
        if kind == "choice":
            ax.set_xticks(range(len(choices)), [str(c) for c in choices])
        ax.set_xlabel(key)
        log_scale(ax)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("val loss where the trial stopped (log scale)")
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(f"{experiment}: val loss of each trial against its sampled values", fontsize=11)
    fig.tight_layout()
    return fig


def position(value: Any, kind: str, choices: list[Any], jitter: np.random.Generator) -> float:
    """Where a sampled value goes on its axis: itself, or the index of a choice (jittered apart)."""
    if kind != "choice":
        return value
    return choices.index(value) + jitter.uniform(-0.15, 0.15)


def curves_figure(experiment: str, cfg: RunConfig, all_trials: list[Trial],
                  curves: dict[str, list[dict[str, np.ndarray]]]) -> plt.Figure:
    """Each trial's val loss by epoch (mean over seeds), pruned ones grey, with the rungs marked."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for t in sorted(all_trials, key=lambda t: t.status != "pruned"):  # the kept ones on top
        histories = curves[t.group]
        length = min(len(h["val_loss"]) for h in histories)
        loss = np.mean([h["val_loss"][:length] for h in histories], axis=0)
        ax.plot(np.arange(1, length + 1), loss, color=STATUS_COLORS.get(t.status, COLORS[1]),
                lw=0.6 if t.status == "pruned" else 1.2, alpha=0.5 if t.status == "pruned" else 0.9)
    if cfg.search.method == "halving":
        for r in rungs(cfg.search, cfg.train.epochs):
            ax.axvline(r, color="black", lw=0.8, ls=":")
        title = "val loss of each trial; dotted lines: the rungs where the worst were pruned (grey)"
    else:
        title = f"val loss of each trial; every {cfg.search.interval} epochs the worst copy the best"
    log_scale(ax, "xy")
    ax.set(xlabel="epoch (log scale)", ylabel="val loss (log scale)")
    ax.set_title(f"{experiment}: {title}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
