"""Optimizers and learning-rate schedules, built from the config.

Schedules are pure functions of the epoch, so every engine uses exactly the same learning rate
in the same epoch, and the history records the rate that was actually used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable

import torch

from trainlab.config import OptimConfig, ScheduleConfig

Parameters = Iterable[torch.nn.Parameter]
# foreach: one update for all of a model's tensors at once (torch chooses it on CUDA only; for these
# small tensors it is faster on the CPU too), the same update. Adam and AdamW fused: one kernel for
# the whole step, the same update up to rounding (benchmarks/README.md).


def _sgd(cfg: OptimConfig, params: Parameters, nesterov: bool = False) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum_value, nesterov=nesterov,
                           weight_decay=cfg.weight_decay_value, foreach=True)


def _adam(cfg: OptimConfig, params: Parameters, decoupled: bool = False) -> torch.optim.Optimizer:
    adam = torch.optim.AdamW if decoupled else torch.optim.Adam
    return adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay_value, fused=True)


def _rmsprop(cfg: OptimConfig, params: Parameters) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum_value,
                               weight_decay=cfg.weight_decay_value, foreach=True)


# Each of config.OPTIMIZERS, as torch.optim builds it (population/optim.py has the batched twins).
TORCH_OPTIMIZERS: dict[str, Callable[[OptimConfig, Parameters], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "momentum": _sgd,  # SGD whose momentum defaults to 0.9 (OptimConfig.momentum_value)
    "nesterov": functools.partial(_sgd, nesterov=True),
    "adam": _adam,
    "adamw": functools.partial(_adam, decoupled=True),
    "rmsprop": _rmsprop,
}


def build_optimizer(cfg: OptimConfig, params: Parameters) -> torch.optim.Optimizer:
    return TORCH_OPTIMIZERS[cfg.name](cfg, params)


def lr_at(cfg: OptimConfig, epoch: int, epochs: int) -> float:
    """The learning rate used during ``epoch`` (counted from 1), as torch's epoch schedulers give it."""
    s: ScheduleConfig = cfg.schedule
    t = epoch - 1  # number of scheduler steps taken before this epoch
    if s.name == "step":
        return cfg.lr * s.gamma ** (t // s.step_size)
    if s.name == "exponential":
        return cfg.lr * s.gamma**t
    if s.name == "cosine":
        return s.eta_min + (cfg.lr - s.eta_min) * (1 + math.cos(math.pi * t / (s.t_max or epochs))) / 2
    return cfg.lr  # constant
