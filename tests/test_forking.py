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
            pids = []
            try:
                fork(lambda: time.sleep(0.01), pids)
            except KeyboardInterrupt:
                if os.getpid() != parent:
                    os._exit(3)
                raise
            pid, = pids
            os.kill(pid, signal.SIGINT)
            codes.add(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        print(sorted(codes))
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[130]" and "KeyboardInterrupt" not in done.stderr


def test_a_ctrl_c_in_the_parent_at_the_fork_leaves_no_child_behind():
    script = textwrap.dedent("""
        import os, signal, time
        from trainlab.forking import forked
        os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            with forked([lambda: time.sleep(0.5)]):
                pass
        except KeyboardInterrupt:
            pass
        try:
            print(os.waitpid(-1, os.WNOHANG))
        except ChildProcessError:
            print("none left")
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "none left"


@pytest.mark.parametrize("when", ["at the fork", "while waiting"])
def test_a_ctrl_c_while_the_last_chunk_is_stored_stores_it_first(tmp_path, when):
    # Ctrl-C as the store's writer is forked, or a second one while trainlab waits for it: the
    # interrupt goes on once every run is stored, and no writer is left running
    script = textwrap.dedent(f"""
        import os, signal, threading, time
        from trainlab import runner
        from trainlab.config import config_from_dict
        from trainlab.store import Store
        runner.SAVE_ALONGSIDE_EPOCHS = 0
        cfg = config_from_dict({{"name": "w", "seeds": 6, "data": {{"n_samples": 60}}, "train": {{"epochs": 3}}}})
        parent, save = os.getpid(), Store.save
        def slow_save(self, *args):
            if os.getpid() != parent:
                time.sleep(0.5)
            save(self, *args)
        Store.save = slow_save
        if {when!r} == "at the fork":
            os.register_at_fork(after_in_parent=lambda: os.kill(parent, signal.SIGINT))
        else:
            def build_report(*args, **kwargs):
                threading.Timer(0.2, lambda: os.kill(parent, signal.SIGINT)).start()
                raise KeyboardInterrupt
            import trainlab.report
            trainlab.report.build_report = build_report
        try:
            runner.run(cfg, out={str(tmp_path)!r})
        except KeyboardInterrupt:
            with Store({str(tmp_path)!r}) as store:
                print(len(store.done_ids()))
        try:
            print(os.waitpid(-1, os.WNOHANG))
        except ChildProcessError:
            print("none left")
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["6", "none left"], done.stdout + done.stderr
