"""kernel.c built by each C compiler on PATH (gcc, clang; CI has both), and what the engine says it runs."""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest
import torch

from test_population import final_loss_gaps
from trainlab.config import config_from_dict, expand
from trainlab.data import DataCache
from trainlab.population import compiled as kernel
from trainlab.population import population_engine
from trainlab.train import train

COMPILERS = ["gcc", "clang"]


def grid(dtype: str):
    return config_from_dict({"seeds": 2, "data": {"n_samples": 150, "noise": 0.3}, "model": {"hidden": [6, 5]},
                             "optim": {"name": "adam", "lr": 0.03},
                             "train": {"epochs": 5, "batch_size": 32, "dtype": dtype},
                             "grid": {"model.activation": ["relu", "tanh", "sigmoid", "gelu", ["leaky_relu", "relu"]],
                                      "model.dropout": [0.0, 0.25]}})


@functools.cache
def reference(dtype: str) -> list:
    cfg, data_for = grid(dtype), DataCache()
    return [train(s.config, s.seed, data=data_for(s.config), spec=s, diagnostics=False) for s in expand(cfg)]


@pytest.fixture
def built_by(request, monkeypatch, tmp_path):
    """The kernel built afresh by ``request.param`` (gcc or clang) into an empty cache."""
    if shutil.which(request.param) is None:
        pytest.skip(f"{request.param} is not installed (CI installs it: make test)")
    monkeypatch.setenv("CC", request.param)
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("TRAINLAB_KERNEL", raising=False)
    kernel._build.cache_clear()
    yield request.param
    kernel._build.cache_clear()


@pytest.mark.parametrize("built_by", COMPILERS, indirect=True)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_compilers_kernel_agrees_with_the_reference_engine(built_by, dtype, tmp_path):
    status = kernel.kernel_status(getattr(torch, dtype))
    assert status.startswith(f"C kernel, built with {built_by} ") and status.endswith(f"({dtype})"), status
    assert list((tmp_path / "kernels").glob("kernel-*.so"))  # built here, not loaded from elsewhere
    specs, data_for = expand(grid(dtype)), DataCache()
    population = sorted((r for chunk in population_engine(specs, data_for) for r in chunk), key=lambda r: r.spec.run_id)
    expected = sorted(reference(dtype), key=lambda r: r.spec.run_id)
    gaps = final_loss_gaps(population, expected)
    if dtype == "float64":
        assert max(gaps) <= 1e-12
        for p, r in zip(population, expected):
            np.testing.assert_allclose(p.history["val_loss"], r.history["val_loss"], rtol=1e-12, atol=1e-14)
            assert np.array_equal(p.history["train_acc"], r.history["train_acc"])
    else:
        assert max(gaps) <= 1e-4


def test_the_status_names_the_fallback_and_why(monkeypatch):
    monkeypatch.setenv("TRAINLAB_KERNEL", "torch")
    assert kernel.kernel_status(torch.float32) == "torch fallback: TRAINLAB_KERNEL=torch"
    monkeypatch.delenv("TRAINLAB_KERNEL")
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert kernel.kernel_status(torch.float64) == ("torch fallback: no C compiler found ('no-such-compiler-here'; "
                                                   "install gcc or clang, or set CC)")
    assert kernel.library(torch.float64) is None


def test_cc_may_be_a_command_with_a_wrapper(monkeypatch, tmp_path):
    compiler = next((c for c in COMPILERS if shutil.which(c)), None)
    if compiler is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("CC", f"env {compiler}")  # as CC="ccache gcc"
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    assert kernel.kernel_status(torch.float64).startswith(f"C kernel, built with {compiler} ")


def test_doctor_system_says_which_code_trains(cli, monkeypatch):
    monkeypatch.setenv("TRAINLAB_KERNEL", "torch")
    result = cli("doctor", "--system")
    assert result.code == 0, result.err
    names = [line.split("  ")[0] for line in result.out.splitlines()]
    assert names == ["python", "torch", "cores", "torch threads", "engine float32", "engine float64"], result.out
    assert torch.__version__ in result.out
    assert result.out.count("torch fallback: TRAINLAB_KERNEL=torch") == 2


def test_doctor_without_a_config_or_system_is_bad_input(cli):
    from conftest import assert_bad_input

    assert_bad_input(cli("doctor"), "doctor needs an experiment config", "--system")
