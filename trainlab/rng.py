"""trainlab's own random numbers for data order: a counter-based generator, the same in Python and in C.

Each model's shuffle of its training points for an epoch is a pure function of (seed, epoch), so
the reference engine (here), the population engine's C kernel (``kernel.c``'s ``permutations``) and
any machine or torch version give the same order, and nothing depends on a library's generator state.

The spec (all arithmetic on unsigned 64-bit integers, i.e. mod 2^64)::

    splitmix64(x):  z = x + 0x9E3779B97F4A7C15
                    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                    return z ^ (z >> 31)
    key(seed, stream, epoch) = splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ epoch)
    draw u_i = splitmix64(key + i), i = 0, 1, ...
    permutation: Fisher–Yates on 0..n-1: for i = n-1 down to 1,
                 j = ((u_i >> 32) * (i + 1)) >> 32  (the top 32 bits of u_i scaled to 0..i);  swap a[i], a[j]

Dropout masks (``dropout_keep``) come from the ``DROPOUT`` stream, one draw per unit and point of
a training step's minibatch::

    layer_key(seed, epoch, step, layer) = splitmix64(key(seed, DROPOUT, epoch) + (step << 16 | layer))
    u = splitmix64(layer_key + (unit << 32 | sample))     sample: the point's position in the minibatch
    keep iff (u >> 11) >= floor(rate · 2^53)               (the top 53 bits of u against the rate)

(steps, hidden layers, units and minibatch positions below 2^48, 2^16, 2^32 and 2^32).

Streams keep independent uses of one seed apart: ``DATA_ORDER`` for the shuffles, ``DROPOUT`` for
dropout masks. Seeds are integers below 2^63 in absolute value (a negative one is
taken mod 2^64, as C's conversion of an int64_t to a uint64_t does).
"""

from __future__ import annotations

import numpy as np

DATA_ORDER = 0
DROPOUT = 1

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def splitmix64(x: int) -> int:
    """SplitMix64's output function (Steele, Lea and Flood 2014) of the 64-bit integer ``x``."""
    z = (x + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    return z ^ (z >> 31)


def key(seed: int, stream: int, epoch: int) -> int:
    return splitmix64(splitmix64(splitmix64(seed & MASK) ^ stream) ^ epoch)


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of ``n`` training points for ``epoch`` of the model seeded ``seed`` (int64)."""
    i = np.arange(n - 1, 0, -1, dtype=np.uint64)  # the shuffle's steps, in order
    j = swap_partners(_splitmix64(np.uint64(key(seed, DATA_ORDER, epoch)) + i), i)
    a = list(range(n))
    for i, j in zip(range(n - 1, 0, -1), j.tolist()):
        a[i], a[j] = a[j], a[i]
    return np.array(a, dtype=np.int64)


def swap_partners(u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Fisher–Yates' j for step i from its draw u: the top 32 bits of u scaled to 0..i."""
    return ((u >> np.uint64(32)) * (i + np.uint64(1))) >> np.uint64(32)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """``splitmix64`` on a uint64 array (numpy's array arithmetic wraps mod 2^64)."""
    z = x + np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def permutations(seeds: list[int], epoch: int, n: int) -> np.ndarray:
    """``permutation(seed, epoch, n)`` for every seed, as the rows of a (len(seeds), n) int64 array:
    one step of the shuffle at a time for all seeds at once."""
    s = np.array(seeds, dtype=np.int64).reshape(-1).view(np.uint64)
    keys = _splitmix64(_splitmix64(_splitmix64(s) ^ np.uint64(DATA_ORDER)) ^ np.uint64(epoch))
    out = np.tile(np.arange(n, dtype=np.int64), (len(s), 1))
    rows = np.arange(len(s))
    for i in range(n - 1, 0, -1):
        u = _splitmix64(keys + np.uint64(i))
        j = swap_partners(u, np.uint64(i)).astype(np.int64)
        out[rows, i], out[rows, j] = out[rows, j], out[rows, i]
    return out


def dropout_threshold(rate: float) -> int:
    """floor(rate · 2^53): a unit is dropped when the top 53 bits of its draw are below it."""
    return int(rate * 2.0**53)  # rate · 2^53 is exact in a double


def dropout_keep(seeds: list[int], epoch: int, step: int, layer: int, units: int, samples: int, rate: float
                 ) -> np.ndarray:
    """Which units of hidden ``layer`` (0 = the first) each model keeps for each point of minibatch
    ``step`` (0 = the first) of ``epoch``: a (len(seeds), units, samples) bool array."""
    s = np.array(seeds, dtype=np.int64).reshape(-1).view(np.uint64)
    keys = _splitmix64(_splitmix64(_splitmix64(s) ^ np.uint64(DROPOUT)) ^ np.uint64(epoch))
    layer_keys = _splitmix64(keys + np.uint64(step << 16 | layer))
    counters = (np.arange(units, dtype=np.uint64)[:, None] << np.uint64(32)) | np.arange(samples, dtype=np.uint64)
    u = _splitmix64(layer_keys[:, None, None] + counters)
    return (u >> np.uint64(11)) >= np.uint64(dropout_threshold(rate))
