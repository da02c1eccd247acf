"""One torch thread against several for the models trainlab trains one at a time.

Trains each config with the reference engine's loop (``train.Training``, which leaves the thread
count as it finds it; ``train.train`` around it picks one thread, trainlab/threads.py) on 1 thread
and on torch's starting count (the cores, unless OMP_NUM_THREADS says otherwise), alternating, and
prints the range of the wall times.

Run: ``env -u OMP_NUM_THREADS .venv/bin/python benchmarks/threads.py [--repeats N] [--quick]``.
"""

import argparse
import time

import torch

from trainlab.config import config_from_dict
from trainlab.data import make_dataset
from trainlab.train import Training

MOONS = {"name": "moons", "n_samples": 600, "noise": 0.25}
CASES = {
    "2→32→2, batch 64, 150 epochs": {"data": MOONS, "model": {"hidden": [32]}, "train": {"epochs": 150}},
    "2→32→32→2, 1,200 points, batch 64, 50 epochs": {
        "data": {"n_samples": 1200, "noise": 0.2, "split": [0.8, 0.2]}, "model": {"hidden": [32, 32]},
        "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": 50}},
    "2→64→64→2, batch 64, 120 epochs": {"data": MOONS, "model": {"hidden": [64, 64], "init": "he"},
                                        "optim": {"lr": 0.01}, "train": {"epochs": 120}},
    "2→10→2, full batch of 480, 2,000 epochs": {"data": {"name": "xor", "n_samples": 600}, "model": {"hidden": [10]},
                                                "optim": {"name": "adam", "lr": 0.1},
                                                "train": {"epochs": 2000, "batch_size": 0}},
    "2→256→256→2, 6,000 points, batch 512, 6 epochs": {"data": {"n_samples": 6000}, "model": {"hidden": [256, 256]},
                                                        "train": {"epochs": 6, "batch_size": 512}},
    "2→512→512→2, 6,000 points, batch 64, 1 epoch": {"data": {"n_samples": 6000}, "model": {"hidden": [512, 512]},
                                                     "train": {"epochs": 1, "batch_size": 64}},
    "2→256→256→2, 6,000 points, full batch, 30 epochs": {"data": {"n_samples": 6000}, "model": {"hidden": [256, 256]},
                                                         "train": {"epochs": 30, "batch_size": 0}},
    "2→1024→1024→2, 6,000 points, batch 256, 1 epoch": {"data": {"n_samples": 6000},
                                                        "model": {"hidden": [1024, 1024]},
                                                        "train": {"epochs": 1, "batch_size": 256}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each config per thread count")
    parser.add_argument("--quick", action="store_true", help="the first two configs only")
    args = parser.parse_args()
    many = torch.get_num_threads()
    cases = list(CASES.items())[: 2 if args.quick else None]
    for label, sections in cases:
        cfg = config_from_dict(sections)
        data = make_dataset(cfg.data)
        times = {1: [], many: []}
        for repeat in range(args.repeats + 1):  # the first round warms up
            for threads in times:
                torch.set_num_threads(threads)
                started = time.perf_counter()
                for _ in Training(cfg, data=data, diagnostics=False).epochs():
                    pass
                if repeat:
                    times[threads].append(time.perf_counter() - started)
        weights = sum(p.numel() for p in Training(cfg, data=data).model.parameters())
        rows = min(cfg.train.batch_size or len(data.X_train), len(data.X_train))
        print(f"{label:52s} {weights * rows:8.1e} weights × rows   1 thread {min(times[1]):6.2f}–{max(times[1]):6.2f} s   "
              f"{many} threads {min(times[many]):6.2f}–{max(times[many]):6.2f} s", flush=True)


if __name__ == "__main__":
    main()
