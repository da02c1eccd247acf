"""The learning-rate range test: one short run whose learning rate grows exponentially each step.

The loss falls slowly while the rate is too small, fast around good rates, and blows up once the
rate is too large. The suggestion is the rate of the lowest (smoothed) loss divided by 10, a
rate safely below the edge of instability (Smith 2017; the fastai rule of thumb).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from trainlab import rng
from trainlab.config import RunConfig
from trainlab.data import Dataset, make_dataset
from trainlab.errors import BadInput
from trainlab.models import build_model, set_dropout_step
from trainlab.optim import build_optimizer
from trainlab.train import DTYPES

SMOOTHING = 0.9  # exponential moving average of the batch losses, bias-corrected
BLOW_UP = 4.0  # stop once the smoothed loss exceeds this multiple of the best


@dataclass(frozen=True)
class LRFind:
    lrs: list[float]  # the rate of each step
    losses: list[float]  # smoothed batch loss after each step's batch, before its update
    best_lr: float  # where the smoothed loss was lowest
    suggested_lr: float
    optimizer: str


def lr_range_test(
    cfg: RunConfig,
    seed: int = 0,
    data: Dataset | None = None,
    lr_min: float = 1e-5,
    lr_max: float = 10.0,
    steps: int = 100,
) -> LRFind:
    """Sweep the learning rate from ``lr_min`` to ``lr_max`` over ``steps`` minibatch steps of ``cfg``."""
    if not 0 < lr_min < lr_max:
        raise BadInput(f"lr range [{lr_min:g}, {lr_max:g}]: expected 0 < lr_min < lr_max")
    if steps < 5:
        raise BadInput(f"steps {steps}: expected at least 5")
    if cfg.data.task == "regression":
        raise BadInput("data.task = 'regression': the LR range test runs on classifiers only")
    dtype = DTYPES[cfg.train.dtype]
    data = data if data is not None else make_dataset(cfg.data)
    X, y = torch.tensor(data.X_train, dtype=dtype), torch.tensor(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    model = build_model(cfg.model, data.in_dim, data.n_classes, generator=generator, dtype=dtype)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    n = len(X)
    batch_size = cfg.train.batch_size or n

    growth = (lr_max / lr_min) ** (1 / (steps - 1))
    lrs, losses, average, best = [], [], 0.0, math.inf
    epoch, order, at = 1, torch.from_numpy(rng.permutation(seed, 1, n)), 0
    for step in range(steps):
        if at >= n:  # a new epoch: the order the training loop would draw for it
            epoch += 1
            order, at = torch.from_numpy(rng.permutation(seed, epoch, n)), 0
        batch = order[at : at + batch_size]
        at += batch_size
        lr = lr_min * growth**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        set_dropout_step(model, seed, epoch=1, step=step)  # the sweep's steps as one long epoch
        loss = F.cross_entropy(model(X[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        average = SMOOTHING * average + (1 - SMOOTHING) * loss.item()
        smoothed = average / (1 - SMOOTHING ** (step + 1))
        if not math.isfinite(smoothed):
            break
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > BLOW_UP * best:
            break

    if not losses:
        raise BadInput(f"LR range test: the loss is not finite at the first step (lr {lr_min:g}): the inputs may "
                       "be too large (scale them: --set data.scale=standard) or --lr-min too high")
    best_lr = lrs[losses.index(min(losses))]
    return LRFind(lrs=lrs, losses=losses, best_lr=best_lr, suggested_lr=best_lr / 10, optimizer=cfg.optim.name)


def check_writable(path: str | Path) -> None:
    """BadInput unless the plot can be written at ``path`` (its directory made if need be): checked
    before the sweep trains, not after."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise BadInput(f"--out {path}: is a directory; expected the plot's file name (e.g. lrfind.png)")
        existed = path.exists()
        with path.open("ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as e:
        raise BadInput(f"--out {path}: cannot write the plot there ({e.strerror})") from None


def plot_lr_find(result: LRFind, path: str | Path, title: str = "") -> Path:
    """Loss against learning rate (log scale), the lowest loss and the suggestion marked."""
    from trainlab.plots import log_scale, plt  # pyplot with trainlab's choice of backend

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(result.lrs, result.losses, color="#2166ac", lw=2, label="smoothed training loss")
    log_scale(ax, "x")
    ax.axvline(result.best_lr, color="#b2182b", ls=":", label=f"lowest loss at lr = {result.best_lr:.3g}")
    ax.axvline(result.suggested_lr, color="#1b7837", ls="--", label=f"suggested lr = {result.suggested_lr:.3g}")
    top = min(max(result.losses), 3 * result.losses[0])  # keep the blow-up from flattening the curve
    ax.set_ylim(min(result.losses) * 0.9, top * 1.05)
    ax.set(xlabel=f"learning rate ({result.optimizer}, log scale)", ylabel="training loss")
    ax.set_title(title or "Learning-rate range test")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
