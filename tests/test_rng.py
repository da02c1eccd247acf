"""trainlab's data-order generator: its spec's values, and the same permutations in Python, numpy and C."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab import rng
from trainlab.population.compiled import DataOrders, library

SEEDS = [0, 1, 7, 12345, 2**40 + 3, 2**62, 2**63 - 1]


def test_splitmix64_known_values():
    # the first outputs of SplitMix64 from state 0, as its reference implementation gives them
    assert rng.splitmix64(0) == 0xE220A8397B1DCDAF
    assert rng.splitmix64(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4
    assert rng.splitmix64(2 * 0x9E3779B97F4A7C15 % 2**64) == 0x06C45D188009454F
    assert rng.key(3, rng.DATA_ORDER, 5) == rng.splitmix64(rng.splitmix64(rng.splitmix64(3)) ^ 5)
    assert rng.key(3, rng.DROPOUT, 5) != rng.key(3, rng.DATA_ORDER, 5)


def test_a_permutation_by_hand():
    """n = 3, seed 0, epoch 1: the spec's two swaps, written out."""
    key = rng.key(0, rng.DATA_ORDER, 1)
    a = [0, 1, 2]
    for i in (2, 1):
        j = ((rng.splitmix64(key + i) >> 32) * (i + 1)) >> 32
        a[i], a[j] = a[j], a[i]
    assert rng.permutation(0, 1, 3).tolist() == a


@pytest.mark.parametrize("n", [0, 1, 2, 3, 420, 1000])
def test_orders_are_permutations_that_differ_by_seed_and_epoch(n):
    orders = {(seed, epoch): rng.permutation(seed, epoch, n) for seed in SEEDS for epoch in (1, 2, 3)}
    for order in orders.values():
        assert order.dtype == np.int64 and sorted(order.tolist()) == list(range(n))
    if n >= 420:
        assert len({tuple(o) for o in orders.values()}) == len(orders)


@pytest.mark.parametrize("n", [1, 2, 5, 420, 1000])
def test_python_numpy_and_c_give_the_same_permutations(n):
    for epoch in (0, 1, 2, 1000):
        python = np.stack([rng.permutation(seed, epoch, n) for seed in SEEDS])
        assert np.array_equal(rng.permutations(SEEDS, epoch, n), python), epoch
        for dtype in (torch.float32, torch.float64):
            lib = library(dtype)
            if lib is None:
                pytest.skip("no C kernel here")
            seeds, out = torch.tensor(SEEDS), torch.empty(len(SEEDS), n, dtype=torch.int64)
            lib.permutations(seeds.data_ptr(), len(SEEDS), epoch, n, out.data_ptr())
            assert np.array_equal(out.numpy(), python), (epoch, dtype)


@pytest.mark.parametrize("in_c", [True, False])
def test_data_orders_follow_the_models_that_stay(in_c):
    lib = library(torch.float64) if in_c else None
    if in_c and lib is None:
        pytest.skip("no C kernel here")
    orders = DataOrders(SEEDS, 50, lib)
    out = torch.empty(len(SEEDS), 50, dtype=torch.int64)
    orders.draw(1, out)
    assert np.array_equal(out.numpy(), rng.permutations(SEEDS, 1, 50))
    orders.keep(torch.tensor([0, 2, 5]))  # models leaving keep the others' orders
    orders.draw(2, out[:3])
    assert np.array_equal(out[:3].numpy(), rng.permutations([SEEDS[i] for i in (0, 2, 5)], 2, 50))


def test_negative_seeds_are_taken_mod_2_to_the_64():
    assert np.array_equal(rng.permutation(-5, 1, 30), rng.permutation(2**64 - 5, 1, 30))
    assert np.array_equal(rng.permutations([-5], 1, 30)[0], rng.permutation(-5, 1, 30))


def chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def test_every_point_lands_in_every_position_equally_often():
    """Over 4,000 epochs of one seed and over 4,000 seeds of one epoch: the (point, position) table of
    n = 6 is uniform (chi-square with 25 degrees of freedom: 99.99 % of uniform tables stay below 60)."""
    n, draws = 6, 4000
    rows = np.arange(n)
    by_epoch = np.zeros((n, n))
    for epoch in range(draws):
        by_epoch[rng.permutation(11, epoch, n), rows] += 1
    by_seed = np.zeros((n, n))
    for order in rng.permutations(list(range(draws)), 3, n):
        by_seed[order, rows] += 1
    assert chi_square(by_epoch) < 60 and chi_square(by_seed) < 60
    # and a biased shuffle (j uniform in 0..n-1 at every step) is caught by the same bound
    biased = np.zeros((n, n))
    draws_ = np.random.default_rng(0)
    for _ in range(draws):
        a = list(range(n))
        for i in range(n - 1, 0, -1):
            j = int(draws_.integers(n))
            a[i], a[j] = a[j], a[i]
        biased[a, rows] += 1
    assert chi_square(biased) > 60


def test_no_warnings_from_numpy_for_the_largest_seeds(recwarn):
    rng.permutations([2**63 - 1, 0], 2**40, 10)
    rng.permutation(2**63 - 1, 2**40, 10)
    assert not recwarn.list


def test_dropout_masks_follow_the_spec():
    seeds, epoch, step, layer, rate = [0, 12345, -7], 3, 5, 1, 0.4
    keep = rng.dropout_keep(seeds, epoch, step, layer, 6, 70, rate)
    assert keep.shape == (3, 6, 70) and keep.dtype == bool
    for s, seed in enumerate(seeds):  # the docstring's spec in Python integers
        layer_key = rng.splitmix64((rng.key(seed, rng.DROPOUT, epoch) + (step << 16 | layer)) % 2**64)
        for unit in range(6):
            for sample in (0, 1, 63, 64, 69):
                u = rng.splitmix64((layer_key + (unit << 32 | sample)) % 2**64)
                assert keep[s, unit, sample] == ((u >> 11) >= int(rate * 2**53))


def test_dropout_keeps_each_unit_with_probability_one_minus_the_rate():
    for rate in (0.0, 0.1, 0.5, 0.9):
        keep = rng.dropout_keep(SEEDS, 1, 0, 0, 50, 400, rate)
        assert abs(keep.mean() - (1 - rate)) < 0.01
    assert rng.dropout_keep([1], 1, 0, 0, 8, 8, 0.0).all()
    masks = [rng.dropout_keep([1], 1, step, layer, 16, 64, 0.5) for step in (0, 1) for layer in (0, 1)]
    assert all(not np.array_equal(a, b) for i, a in enumerate(masks) for b in masks[i + 1:])  # each its own
