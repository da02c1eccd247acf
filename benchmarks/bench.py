"""Throughput benchmark: the same as `trainlab bench [--quick] [--json]` (see trainlab/bench.py)."""

from trainlab.bench import main

if __name__ == "__main__":
    main()
