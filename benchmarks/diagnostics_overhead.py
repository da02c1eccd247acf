"""What the per-epoch diagnostics (``train(..., diagnostics=True)``) cost the reference engine.

Trains the same configs with and without ``Diagnostics``, interleaved, and prints the best of N
wall times and the ratio. Run: ``.venv/bin/python benchmarks/diagnostics_overhead.py``.
"""

import time

from trainlab.config import config_from_dict
from trainlab.data import make_dataset
from trainlab.train import train

CASES = {
    "2→32→2 relu, batch 64": {"model": {"hidden": [32]}},
    "2→32→32→32→2 relu, batch 16": {"model": {"hidden": [32, 32, 32]}, "train": {"batch_size": 16}},
    "2→64→64→2 tanh, full batch": {"model": {"hidden": [64, 64], "activation": "tanh"}, "train": {"batch_size": 0}},
}


def best_time(cfg, data, diagnostics: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        train(cfg, data=data, diagnostics=diagnostics)
        times.append(time.perf_counter() - start)
    return min(times)


def main(epochs: int = 30, repeats: int = 7) -> None:
    print(f"{'config':<32} {'without':>9} {'with':>9} {'overhead':>9}")
    for name, sections in CASES.items():
        cfg = config_from_dict({**sections, "train": {"epochs": epochs, **sections.get("train", {})}})
        data = make_dataset(cfg.data)
        without = with_ = float("inf")
        for _ in range(repeats):  # interleaved, so a busy neighbour slows both alike
            without = min(without, best_time(cfg, data, False, 1))
            with_ = min(with_, best_time(cfg, data, True, 1))
        print(f"{name:<32} {without * 1e3:>7.1f}ms {with_ * 1e3:>7.1f}ms {100 * (with_ / without - 1):>8.1f}%")


if __name__ == "__main__":
    main()
