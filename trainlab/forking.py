"""Work done in forked child processes while the parent carries on: the population engine's
workers (``population.loop``), the CSV export beside the report (``runner``) and half the
report's figures (``report``).

Linux only: macOS frameworks are not fork-safe and Windows has no fork. The children share the
parent's memory copy-on-write (and any ``mmap`` made before the fork for real), and leave with
``os._exit``, running none of the parent's exit handlers or finalizers.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

FORK = sys.platform == "linux"


class ChildFailed(RuntimeError):
    def __init__(self, failed: int, of: int):
        super().__init__(f"{failed} of {of} forked processes failed (see the traceback above)")
        self.failed = failed


@contextmanager
def forked(tasks: list[Callable[[], None]]) -> Iterator[None]:
    """Run each task in a forked child while the body runs, then wait for them all.

    If the body raises (an error, or Ctrl-C in a Jupyter kernel, which reaches the kernel but not
    its children), the children are killed rather than awaited: the parent neither hangs until
    they finish nor leaves zombies behind. ``ChildFailed`` if a child failed or was killed.
    """
    pids: list[int] = []
    try:
        for task in tasks:
            fork(task, pids)
        yield
    except BaseException:
        kill(pids)
        raise
    failed = _reap(pids)
    if failed:
        raise ChildFailed(failed, len(tasks))


def fork(task: Callable[[], None], pids: list[int]) -> None:
    """Run ``task`` in a forked child, its pid appended to ``pids`` (for ``succeeded``) before a
    Ctrl-C held back meanwhile goes on: in the child, a KeyboardInterrupt raised before _child's
    handlers are in place would carry on with the parent's code; in the parent, before the pid is
    kept, it would leave the child unawaited."""
    with interrupts_held() as mask:
        pid = os.fork()
        if pid == 0:
            _child(task, mask)
        pids.append(pid)


@contextmanager
def interrupts_held() -> Iterator[set]:
    """Ctrl-C held back in this thread while the body runs, then raised if one came; yields the
    signal mask to restore."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def succeeded(pid: int) -> bool:
    """Wait for the forked child ``pid``: whether its task finished."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _child(task: Callable[[], None], mask: set) -> None:
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _without_parents_threads()
        task()
        code = 0
    except KeyboardInterrupt:  # Ctrl-C in a terminal reaches the parent too, which reports it
        code = 130
    except BaseException:
        os.write(2, traceback.format_exc().encode())
    finally:
        os._exit(code)


def _without_parents_threads() -> None:
    """Only the forking thread lives on in a child: nothing here may wait on the others. So torch
    runs on one thread (an op using the parent's OpenMP pool waits forever), and warnings and
    tracebacks go straight to fd 2 (sys.stderr may be an object whose lock another thread held at
    the fork: a Jupyter kernel's stream, rich's progress display)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    warnings.showwarning = _warning_to_fd_2


def _warning_to_fd_2(message, category, filename, lineno, file=None, line=None) -> None:
    os.write(2, warnings.formatwarning(message, category, filename, lineno, line).encode())


def _reap(pids: list[int]) -> int:
    """Wait for every child; the number that failed. Interrupted, kill the ones left."""
    failed = 0
    try:
        while pids:
            failed += not succeeded(pids[0])
            pids.pop(0)
    except BaseException:
        kill(pids)
        raise
    return failed


def kill(pids: list[int]) -> None:
    """Kill the children ``pids`` and wait for them (any already gone are skipped)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
