"""Models: building and initialising the MLPs both engines train."""

import pytest
import torch

from trainlab.config import config_from_dict
from trainlab.models import build_model


def cfg(**sections):
    return config_from_dict(sections)


def test_inits():
    c = cfg(model={"hidden": [64, 64], "init": "he"})
    w = build_model(c.model, 2, 2, torch.Generator().manual_seed(0))[2].weight
    assert w.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)
    for name, std in (("small", 1e-3), ("large", 1.0)):
        w = build_model(cfg(model={"hidden": [64, 64], "init": name}).model, 2, 2,
                        torch.Generator().manual_seed(0))[2].weight
        assert w.std().item() == pytest.approx(std, rel=0.1)
    zero = build_model(cfg(model={"init": "zeros"}).model, 2, 2)
    assert all((p == 0).all() for p in zero.parameters())


def test_default_init_matches_nn_linear_distribution():
    c = cfg(model={"hidden": [256]})
    w = build_model(c.model, 100, 2, torch.Generator().manual_seed(0))[0].weight
    bound = 1 / 100**0.5
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.95 * bound
