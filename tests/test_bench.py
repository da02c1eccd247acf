"""The benchmark's machinery (its figures are checked by running it, not by a timed test)."""

from __future__ import annotations

import pytest

from trainlab.bench import measure, plan_measurements


@pytest.mark.parametrize("kind", ["notebook", "sklearn", "reference", "population"])
def test_each_contender_is_measured(kind):
    r = measure(kind, "2→32→2", 4 if kind == "population" else 1, epochs=2, threads=1)
    assert r["model_epochs_per_s"] > 0 and r["seconds"] > 0
    assert r["peak_mib"] > 0 and r["kib_per_model"] >= 0 and r["per_cpu_second"] > 0


def test_the_plan_covers_the_issue():
    full = plan_measurements(quick=False)
    pop_sizes = {k for kind, net, k, _ in full if kind == "population" and net == "2→32→2"}
    assert pop_sizes == {1, 16, 256, 1024, 4096}
    assert {kind for kind, *_ in full} == {"notebook", "sklearn", "reference", "population"}
    assert {net for _, net, *_ in full} == {"2→32→2", "2→64→64→2"}


def test_trainlab_run_end_to_end_is_measured():
    from trainlab.bench import end_to_end_runs, measure_end_to_end

    r = measure_end_to_end(4, 1, threads=1)
    assert r["engine"] == "trainlab run" and r["model_epochs_per_s"] > 0 and r["peak_mib"] > 0
    assert r["load_average"] >= 0
    assert max(k for k, _ in end_to_end_runs(quick=False)) >= 1024
