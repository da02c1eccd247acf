"""forking.forked: work in child processes, which must not wait on the parent's other threads."""

import subprocess
import sys
import textwrap
import warnings

import pytest

from trainlab.forking import FORK, ChildFailed, forked

pytestmark = pytest.mark.skipif(not FORK, reason="the forked workers are Linux-only")


class HeldStream:
    """sys.stderr as a child may find it: its lock held by a thread the fork did not copy."""

    def write(self, text: str) -> int:
        raise RuntimeError("would wait forever for the stream's lock")

    def flush(self) -> None:
        pass


def test_a_childs_warnings_and_errors_go_straight_to_fd_2(monkeypatch, capfd):
    monkeypatch.setattr(sys, "stderr", HeldStream())
    with forked([lambda: warnings.warn("drawn in the child")]):
        pass
    assert "UserWarning: drawn in the child" in capfd.readouterr().err
    with pytest.raises(ChildFailed, match="1 of 1 forked processes failed"):
        with forked([lambda: 1 / 0]):
            pass
    assert "ZeroDivisionError" in capfd.readouterr().err


def test_a_child_runs_torch_after_the_parent_ran_it_on_threads():
    # the parent's OpenMP threads are not in the child: an op using them would wait forever
    script = textwrap.dedent("""
        import torch
        from trainlab.forking import forked
        torch.set_num_threads(2)
        torch.randn(4_000_000).exp().sum()
        with forked([lambda: torch.randn(4_000_000).exp().sum()]):
            pass
    """)
    subprocess.run([sys.executable, "-c", script], timeout=60, check=True)


def test_a_ctrl_c_right_after_the_fork_is_the_childs_own():
    # held back until the child's handlers are in place: it ends the child (130), and never runs
    # on in the parent's code (or in Python's after-fork hooks, which would swallow it)
    script = textwrap.dedent("""
        import os, signal, time
        from trainlab.forking import fork, succeeded
        parent, codes = os.getpid(), set()
        for _ in range(100):
            try:
                pid = fork(lambda: time.sleep(0.01))
            except KeyboardInterrupt:
                if os.getpid() != parent:
                    os._exit(3)
                raise
            os.kill(pid, signal.SIGINT)
            codes.add(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        print(sorted(codes))
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[130]" and "KeyboardInterrupt" not in done.stderr
