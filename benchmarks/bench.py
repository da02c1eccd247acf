"""Throughput benchmark: ``python benchmarks/bench.py [--quick] [--json] [--threads N]`` runs
``trainlab bench`` with the same options (the measurements are trainlab/bench.py's)."""

import sys

from trainlab.cli import main

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
