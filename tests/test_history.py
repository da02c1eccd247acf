"""history.py: its rules, the same on one run's floats and on a population's tensors, and RunBatch."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.config import config_from_dict, expand
from trainlab.data import DataCache
from trainlab.history import DIVERGENCE_FACTOR, RunBatch, RunResult, best_epoch, diverged, divergence_limit, improves
from trainlab.population import train_population

NAN, INF = math.nan, math.inf


def test_divergence_is_a_non_finite_loss_or_one_above_100_times_the_untrained_models():
    cases = [(0.7, 0.69, False), (68.9, 0.69, False), (69.1, 0.69, True), (NAN, 0.69, True), (INF, 0.69, True),
             (1e30, INF, False), (INF, INF, True), (0.5, NAN, False), (NAN, NAN, True)]
    assert DIVERGENCE_FACTOR == 100
    for loss, untrained, expected in cases:
        assert diverged(loss, divergence_limit(untrained)) is expected, (loss, untrained)
    # the population engine's form: float64 tensors, one entry per model
    losses = torch.tensor([c[0] for c in cases], dtype=torch.float64)
    limits = torch.tensor([divergence_limit(c[1]) for c in cases], dtype=torch.float64)
    assert diverged(losses, limits).tolist() == [c[2] for c in cases]


def test_an_improvement_beats_the_best_by_more_than_min_delta_and_is_finite():
    cases = [  # value, best, monitor, min_delta, improves
        (0.5, NAN, "val_loss", 0.0, True),  # the first finite value
        (NAN, NAN, "val_loss", 0.0, False),
        (INF, NAN, "val_loss", 0.0, False),
        (0.4, 0.5, "val_loss", 0.0, True),
        (0.5, 0.5, "val_loss", 0.0, False),
        (0.45, 0.5, "val_loss", 0.1, False),
        (0.9, 0.8, "val_acc", 0.0, True),
        (0.7, 0.8, "val_acc", 0.0, False),
        (0.85, 0.8, "val_acc", 0.1, False),
    ]
    for value, best, monitor, min_delta, expected in cases:
        assert improves(value, best, monitor, min_delta) is expected
        as_tensors = improves(torch.tensor([value]), torch.tensor([best]), monitor, min_delta)
        assert as_tensors.tolist() == [expected]


def test_best_epoch_is_the_last_improvement():
    assert best_epoch([0.5, 0.4, NAN, 0.45, 0.3]) == 5
    assert best_epoch([0.5, 0.49, 0.6], min_delta=0.05) == 1
    assert best_epoch([0.6, 0.8, 0.7], monitor="val_acc") == 2
    assert best_epoch([NAN, NAN]) == 1


def test_run_batch_is_a_sequence_of_run_results():
    cfg = config_from_dict({"seeds": 2, "data": {"n_samples": 120}, "train": {"epochs": 6, "batch_size": 16},
                            "grid": {"optim.lr": [0.05, 0.01]}})
    specs = expand(cfg)
    batch = train_population(specs, DataCache()(cfg))
    assert isinstance(batch, RunBatch) and len(batch) == len(specs)
    runs = list(batch)
    assert all(isinstance(r, RunResult) for r in runs) and [r.spec for r in runs] == specs
    assert batch[-1].spec == specs[-1] and [r.spec for r in batch[1:3]] == specs[1:3]
    with pytest.raises(IndexError):
        batch[len(specs)]
    summaries = batch.summaries()
    for i, r in enumerate(runs):
        assert len(r.history["val_loss"]) == r.epochs_run == batch.epochs_run[i]
        assert {c: summaries[c][i] for c in summaries} == r.summary()
