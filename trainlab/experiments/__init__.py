"""The built-in lab experiments: one TOML file each, named as in the `experiment` column of runs.csv."""

from __future__ import annotations

from pathlib import Path

from trainlab.config import RunConfig, load_config
from trainlab.errors import BadInput

HERE = Path(__file__).parent
DEFAULT_SEEDS = 10
QUICK_SEEDS = 3


# The order of the course: notebook 004's experiments, then the XOR lab, then notebook 000's; then
# real data.
ORDER = ("activations", "initialization", "depth", "optimizers", "learning_rates", "xor_sgd_vs_adam",
         "overfit_check", "first_training_loop", "digits_depth_width")


def names() -> list[str]:
    found = {p.stem for p in HERE.glob("*.toml")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def path(name: str) -> Path:
    p = HERE / f"{name}.toml"
    if not p.exists():
        raise BadInput(f"unknown experiment {name!r}; expected one of: {', '.join(names())}")
    return p


def load(name: str, seeds: int | None = None, quick: bool = False, overrides: list[str] | tuple[str, ...] = ()
         ) -> RunConfig:
    """An experiment's config with ``seeds`` seeds (default 10; 3 with ``quick``).

    ``overrides`` are ``KEY=VALUE`` strings as for ``trainlab run --set``: ``["train.epochs=60"]``.
    """
    n = seeds or (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    return load_config(path(name), [f"seeds={n}", f"experiment={name!r}", *overrides])


def describe() -> dict[str, str]:
    return {name: load_config(path(name)).description for name in names()}
