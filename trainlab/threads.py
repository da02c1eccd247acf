"""Torch threads for the models trainlab trains one at a time: one for small models, unless the
user chose a count.

Each torch operation on a small model (thousands of weights, minibatches of tens or hundreds of
rows) takes microseconds: handing it to a team of threads costs more than it saves, and on busy
cores the team waits for its slowest member. Measured in benchmarks/threads.py (README "Threads").

The user's choice wins: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment, or a
``torch.set_num_threads(n)`` to a count other than the one torch had when trainlab first trained
(trainlab cannot tell a count set before that from torch's own).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
STARTING_THREADS = torch.get_num_threads()  # torch's own count, unless the user set one before
SMALL_STEP = 1e8  # weights × rows per step: one thread never slower up to 3.4e7, a toss-up at 2.7e8


def user_chose_threads() -> bool:
    """Whether the user set torch's thread count (the environment, or torch.set_num_threads)."""
    return any(os.environ.get(name) for name in THREAD_VARIABLES) or torch.get_num_threads() != STARTING_THREADS


@contextmanager
def small_model_threads(weights: int, rows: int) -> Iterator[None]:
    """The body, steps of a model of ``weights`` on ``rows`` rows at a time, runs on one torch thread
    if that is small, unless the user chose a count; the count is restored after."""
    if weights * rows > SMALL_STEP or user_chose_threads():
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
