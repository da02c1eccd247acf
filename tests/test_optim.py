"""Optimizers and learning-rate schedules, as torch.optim defines them."""

import pytest
import torch

from trainlab.config import config_from_dict
from trainlab.optim import lr_at
from trainlab.train import train


def cfg(**sections):
    return config_from_dict(sections)


@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine"])
def test_schedules_match_torch(schedule):
    kwargs = {"step": {"step_size": 3, "gamma": 0.5}, "exponential": {"gamma": 0.9}, "cosine": {}}[schedule]
    c = cfg(optim={"lr": 0.2, "schedule": {"name": schedule, **kwargs}}, train={"epochs": 10})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    sched = {
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
        "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
    }[schedule]()
    for epoch in range(1, 11):
        assert lr_at(c.optim, epoch, 10) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_every_optimizer_learns(optimizer):
    lr = {"sgd": 0.2, "momentum": 0.05, "nesterov": 0.05}.get(optimizer, 0.01)
    r = train(cfg(optim={"name": optimizer, "lr": lr}, train={"epochs": 30}))
    assert r.summary()["final_train_loss"] < 0.35


def test_learning_rate_schedule_is_recorded():
    c = cfg(optim={"lr": 0.1, "schedule": {"name": "step", "step_size": 2, "gamma": 0.5}}, train={"epochs": 5})
    assert train(c).history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
