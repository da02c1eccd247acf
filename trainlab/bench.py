"""``trainlab bench``: model-epochs per second of the ways to train many small MLPs, in one run.

Workloads: 2→32→2 and 2→64→64→2, Adam, batch 64, moons (600 points, 70/30), an evaluation of the
whole validation split after every epoch. Contenders: (a) the course notebook's loop as written
(DataLoader, per-epoch eval), (b) scikit-learn's MLPClassifier, (c) the reference engine, (d) the
population engine at several K, and (e) ``trainlab run`` end to end (training, store, CSV, plots).
Each measurement runs in a fresh process, so its peak memory is its own; ratios are to (a) and (b)
measured in the same run, on the same (possibly shared) machine.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

NETS = {"2→32→2": [32], "2→64→64→2": [64, 64]}


def bench_config(hidden: list[int], seeds: int, epochs: int):
    from trainlab.config import config_from_dict

    return config_from_dict({
        "name": "bench", "seeds": seeds,
        "data": {"name": "moons", "n_samples": 600, "noise": 0.25, "split": [0.7, 0.3]},
        "model": {"hidden": hidden}, "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 64},
    })


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (the engine's workers):
    on a shared machine, work per CPU-second is the steadier figure."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def notebook_loop(data, hidden: list[int], epochs: int) -> None:
    """The course notebook's ``train_model`` (chapter 4 lab), with Adam."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    train_loader = DataLoader(TensorDataset(torch.tensor(data.X_train, dtype=torch.float32),
                                            torch.tensor(data.y_train)), batch_size=64, shuffle=True)
    test_loader = DataLoader(TensorDataset(torch.tensor(data.X_val, dtype=torch.float32),
                                           torch.tensor(data.y_val)), batch_size=64, shuffle=False)
    sizes = [2, *hidden, 2]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    train_losses, test_losses = [], []
    for _ in range(epochs):
        model.train()
        running_loss = 0.0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * xb.size(0)
        train_losses.append(running_loss / len(train_loader.dataset))
        model.eval()
        running_loss_test = 0.0
        with torch.no_grad():
            for xb, yb in test_loader:
                running_loss_test += criterion(model(xb), yb).item() * xb.size(0)
        test_losses.append(running_loss_test / len(test_loader.dataset))


def sklearn_mlp(data, hidden: list[int], epochs: int) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), solver="adam", learning_rate_init=0.01, batch_size=64,
                        max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(data.X_train, data.y_train)


def make_job(kind: str, net: str, k: int, epochs: int):
    """The work of one measurement, ready to run: K models of ``net`` for ``epochs`` epochs."""
    from trainlab.config import expand
    from trainlab.data import make_dataset

    hidden = NETS[net]
    cfg = bench_config(hidden, k, epochs)
    data = make_dataset(cfg.data)
    if kind == "population":
        from trainlab.population import train_population

        specs = expand(cfg)
        return lambda: train_population(specs, data)
    if kind == "reference":
        from trainlab.train import train

        return lambda: train(cfg, 0, data=data, diagnostics=False)  # as `trainlab run` trains
    if kind == "notebook":
        return lambda: notebook_loop(data, hidden, epochs)
    if kind == "sklearn":
        return lambda: sklearn_mlp(data, hidden, epochs)
    raise AssertionError(kind)


def measure(kind: str, net: str, k: int, epochs: int, threads: int | None = None) -> dict[str, Any]:
    """One measurement, meant to run in a fresh process: model-epochs/s and peak memory."""
    import torch

    # Each contender at its best: one torch thread for the one-model loops (on models this small a
    # second thread only adds synchronisation, and under load it makes them several times slower),
    # and the population engine with one worker process per core; --threads N fixes it for all.
    torch.set_num_threads(threads or (torch.get_num_threads() if kind == "population" else 1))
    make_job(kind, net, min(k, 16), 1)()  # warm up: libraries load and kernels initialise outside the timing
    job = make_job(kind, net, k, epochs)
    hidden = NETS[net]
    baseline = _rss_kib("VmRSS")
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak resident memory)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    job()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    peak = max(_rss_kib("VmHWM"), baseline)
    sizes = [2, *hidden, 2]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    # what a model must keep: parameters, gradient, two Adam moments (float32), its history (float64)
    essential = 4 * n_params * 4 + epochs * 6 * 8
    extra = (peak - baseline) * 1024 / k
    return _figures(kind, net, k, epochs, seconds, cpu, peak, kib_per_model=extra / 1024,
                    overhead_kib_per_model=max(0.0, extra - essential) / 1024)


def _figures(engine: str, net: str, k: int, epochs: int, seconds: float, cpu: float, peak_kib: float,
             **memory: float | None) -> dict[str, Any]:
    """A measurement's row: the throughput of K models × epochs in ``seconds`` (``cpu`` CPU-seconds)."""
    return {"engine": engine, "net": net, "K": k, "epochs": epochs, "seconds": seconds,
            "model_epochs_per_s": k * epochs / seconds, "per_cpu_second": k * epochs / cpu,
            "peak_mib": peak_kib / 1024, "load_average": os.getloadavg()[0], **memory}


def measure_end_to_end(k: int, epochs: int, threads: int | None = None, build: Path | None = None
                       ) -> dict[str, Any]:
    """``trainlab run`` of K seeds as a user runs it: start-up, training, store, CSV files, plots, report.
    ``build``: a directory holding another trainlab checkout to run instead of this one."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(f'name = "bench"\nseeds = {k}\n[data]\nname = "moons"\nn_samples = 600\n'
                          f'[optim]\nname = "adam"\nlr = 0.01\n[train]\nepochs = {epochs}\nbatch_size = 64\n')
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}),
               **({"PYTHONPATH": str(build)} if build else {})}
        started = time.perf_counter()
        # from the temporary directory: ``python -m`` puts the working directory ahead of PYTHONPATH
        command = [sys.executable, "-m", "trainlab", "run", str(config), "--out", str(Path(tmp) / "out")]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own peak memory, not the other children's
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"trainlab run failed: {child.stderr.read().decode()}")
        child.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime  # the child's, with the worker processes it waited for
    return _figures("trainlab run", "2→32→2", k, epochs, seconds, cpu, usage.ru_maxrss, kib_per_model=None,
                    overhead_kib_per_model=None)


def plan_measurements(quick: bool) -> list[tuple[str, str, int, int]]:
    epochs = 5 if quick else 20
    ks = (1, 16, 256, 1024) if quick else (1, 16, 256, 1024, 4096)
    out = []
    for net in NETS:
        out += [("notebook", net, 1, epochs), ("sklearn", net, 1, epochs), ("reference", net, 1, epochs)]
        out += [("population", net, k, epochs) for k in ks if net == "2→32→2" or k <= (256 if quick else 1024)]
    return out


def end_to_end_runs(quick: bool) -> list[tuple[int, int]]:
    """(K, epochs) of the ``trainlab run`` measurements: the table's epochs, where start-up (~2 s of
    imports) and the plots weigh heavily, and longer sweeps where training and storing dominate."""
    return [(1024, 5)] if quick else [(1024, 20), (1024, 150), (1024, 500), (4096, 150)]


def run_benchmark(quick: bool = False, threads: int | None = None, progress=None) -> list[dict[str, Any]]:
    """Every measurement, each in a fresh process; ``progress`` is handed each as it comes."""
    results = []
    spawn = multiprocessing.get_context("spawn")
    for args in plan_measurements(quick):
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            results.append(pool.submit(measure, *args, threads).result())
        if progress:
            progress(results[-1])
    for k, epochs in end_to_end_runs(quick):
        results.append(measure_end_to_end(k, epochs, threads))
        if progress:
            progress(results[-1])
    for r in results:
        base = {b["engine"]: b["model_epochs_per_s"] for b in results if b["net"] == r["net"] and b["K"] == 1}
        r["x_notebook"] = r["model_epochs_per_s"] / base["notebook"]
        r["x_sklearn"] = r["model_epochs_per_s"] / base["sklearn"]
    return results
