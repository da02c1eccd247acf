"""What the per-epoch diagnostics (``train(..., diagnostics=True)``) cost the reference engine.

Trains the same configs with and without ``Diagnostics``, interleaved, and prints the best of N
wall times and the ratio. Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diagnostics_overhead.py``.

Measured (best of 7, 2 shared cores at load ~2.3, three runs' range), without → with:

    2→32→2 relu, batch 64            46.4–47.2 ms → 50.4–51.0 ms   +7.6–8.8%
    2→32→32→32→2 relu, batch 16     217–224 ms   → 222–227 ms     +1.5–2.4%
    2→64→64→2 tanh, full batch       27.3–29.2 ms → 31.9–34.1 ms   +16.6–17.4%

(before the diagnostics shared the loop's gradient norms and evaluation: 52.3 → 67.2 ms +28%,
255 → 295 ms +16%, 27.5 → 39.1 ms +42%; the "without" column fell too, as history's ``grad_norm``
now comes from one fused norm per step.)
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
