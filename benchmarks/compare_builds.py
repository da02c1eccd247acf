"""``trainlab run`` end to end, this checkout against another build, alternating in the same minutes.

    .venv/bin/python benchmarks/compare_builds.py 49fba8a            # a commit, checked out aside
    .venv/bin/python benchmarks/compare_builds.py ../other-checkout --rounds 8 --rows 1024x500

After one unmeasured run per build, each round runs every row (K seeds × epochs of the workload of
``trainlab.bench.measure_end_to_end``) once per build, the builds' order swapped every round, so
both see the same load. Both run with the Python that runs this script and ``PYTHONPATH`` set to
the build (from a temporary directory, so that nothing else is imported in its place): the same
torch and libraries, only trainlab differs. Prints the seconds of every run, the median per row,
and each row's ratio (the other build's median over this one's: above 1, this checkout is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from trainlab.bench import measure_end_to_end

CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", help="a directory holding another trainlab checkout, or a git commit of this one")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rows", default="1024x20,1024x150,1024x500,4096x150", help="KxEPOCHS,...")
    args = parser.parse_args()
    rows = [tuple(map(int, row.split("x"))) for row in args.rows.split(",")]
    other = Path(args.other)
    if (other / "trainlab").is_dir():
        compare({"this": CHECKOUT, "other": other.resolve()}, rows, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        aside = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(CHECKOUT), "worktree", "add", "--detach", str(aside), args.other], check=True)
        try:
            compare({"this": CHECKOUT, "other": aside}, rows, args.rounds)
        finally:
            subprocess.run(["git", "-C", str(CHECKOUT), "worktree", "remove", "--force", str(aside)])


def compare(builds: dict[str, Path], rows: list[tuple[int, int]], rounds: int) -> None:
    seconds: dict[tuple[str, tuple[int, int]], list[float]] = {(b, row): [] for b in builds for row in rows}
    for build in builds.values():  # not measured: compiles each build's kernel, warms the file cache
        measure_end_to_end(16, 5, build=build)
    for i in range(rounds):
        for row in rows:
            for build in list(builds)[:: 1 if i % 2 == 0 else -1]:
                seconds[build, row].append(measure_end_to_end(*row, build=builds[build])["seconds"])
                print(f"round {i + 1} {build:<5} {row[0]}x{row[1]}: {seconds[build, row][-1]:.2f} s  "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    totals = dict.fromkeys(builds, 0.0)
    for row in rows:
        medians = {b: statistics.median(seconds[b, row]) for b in builds}
        for b in builds:
            totals[b] += medians[b]
        print(f"{row[0]}x{row[1]}: this {medians['this']:.2f} s, other {medians['other']:.2f} s (medians), "
              f"ratio {medians['other'] / medians['this']:.2f}")
    print(f"all rows: ratio {totals['other'] / totals['this']:.2f} (other's seconds over this checkout's)")


if __name__ == "__main__":
    main()
