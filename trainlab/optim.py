"""Optimizers and learning-rate schedules, built from the config.

Schedules are pure functions of the epoch, so every engine uses exactly the same learning rate
in the same epoch, and the history records the rate that was actually used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from trainlab.config import OptimConfig, ScheduleConfig


def build_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    wd = cfg.weight_decay_value
    match cfg.name:
        case "sgd":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum_value, weight_decay=wd)
        case "momentum":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum_value, weight_decay=wd)
        case "nesterov":
            return torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum_value, nesterov=True, weight_decay=wd
            )
        case "adam":
            return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=wd)
        case "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=wd)
        case "rmsprop":
            return torch.optim.RMSprop(
                params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum_value, weight_decay=wd
            )
    raise AssertionError(cfg.name)


def lr_at(cfg: OptimConfig, epoch: int, epochs: int) -> float:
    """The learning rate used during ``epoch`` (counted from 1), as torch's epoch schedulers give it."""
    s: ScheduleConfig = cfg.schedule
    t = epoch - 1  # number of scheduler steps taken before this epoch
    match s.name:
        case "constant":
            return cfg.lr
        case "step":
            return cfg.lr * s.gamma ** (t // s.step_size)
        case "exponential":
            return cfg.lr * s.gamma**t
        case "cosine":
            t_max = s.t_max or epochs
            return s.eta_min + (cfg.lr - s.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
    raise AssertionError(s.name)
