"""Torch threads for the models trainlab trains one at a time: one, unless the user chose a count.

These models are small (thousands of weights, batches of tens or hundreds of rows), so each torch
operation takes microseconds and handing it to a team of threads costs more than it saves; when
other work shares the cores, the team also waits for its slowest member. On the project's 2-core
machine one thread trained every model measured faster than torch's default two, from 2→32→2
(0.5 s against 5–7 s for 150 epochs) to 2→1024→1024→2 on 6,000 points (README, "Threads").

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


def user_chose_threads() -> bool:
    """Whether the user set torch's thread count (the environment, or torch.set_num_threads)."""
    return any(os.environ.get(name) for name in THREAD_VARIABLES) or torch.get_num_threads() != STARTING_THREADS


@contextmanager
def small_model_threads() -> Iterator[None]:
    """The body runs on one torch thread, unless the user chose a count; the count is restored after."""
    if user_chose_threads():
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
