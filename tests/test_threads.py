"""Small models train on one torch thread unless the user chose a thread count; large ones keep torch's."""

import pytest
import torch

import trainlab as tl
from trainlab.config import config_from_dict
from trainlab.threads import STARTING_THREADS, THREAD_VARIABLES
from trainlab.train import autograd_gradients

CFG = config_from_dict({"data": {"n_samples": 100}, "model": {"hidden": [4]}, "train": {"epochs": 2}})


def threads_while_training(cfg=CFG) -> set[int]:
    seen = set()

    def gradients(model, X, y):
        seen.add(torch.get_num_threads())
        return autograd_gradients(model, X, y)

    tl.train(cfg, gradients=gradients, diagnostics=False)
    return seen


@pytest.fixture
def torchs_own_threads(monkeypatch):
    """No thread count chosen: no variable in the environment, torch at its starting count."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(STARTING_THREADS)
    yield
    torch.set_num_threads(before)


def test_train_runs_on_one_thread_by_default_and_gives_the_count_back(torchs_own_threads):
    assert threads_while_training() == {1}
    assert torch.get_num_threads() == STARTING_THREADS


def test_a_count_set_with_torch_set_num_threads_is_kept(torchs_own_threads):
    torch.set_num_threads(STARTING_THREADS + 1)
    assert threads_while_training() == {STARTING_THREADS + 1}


@pytest.mark.parametrize("variable", THREAD_VARIABLES)
def test_a_count_set_in_the_environment_is_kept(torchs_own_threads, monkeypatch, variable):
    monkeypatch.setenv(variable, str(STARTING_THREADS))
    assert threads_while_training() == {STARTING_THREADS}


def test_a_large_model_keeps_torchs_threads(torchs_own_threads):
    # 2→1024→1024→2 on minibatches of 256 rows: 2.7e8 multiply-adds a step, where several threads win.
    large = config_from_dict({"data": {"n_samples": 400}, "model": {"hidden": [1024, 1024]},
                              "train": {"epochs": 1, "batch_size": 256}})
    assert threads_while_training(large) == {STARTING_THREADS}
