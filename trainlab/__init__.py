"""trainlab: train small neural networks and see what happens.

    import trainlab as tl
    cfg = tl.load_config("moons.toml")
    result = tl.train(cfg, seed=0)          # one run, the reference engine
    results = tl.run(cfg, out="runs/moons") # every grid point × seed, stored and plotted
    cfg = tl.experiment("activations")      # a built-in lab experiment
"""

import gc

# Importing torch, scikit-learn and pydantic creates about a million objects, and the cyclic garbage
# collector would walk them over and over meanwhile: 0.25 s of the 1.6 s this import takes. They
# are then moved to its oldest generation in one go (freeze, unfreeze) rather than walked through
# the younger ones (6 collections, 0.12 s). Nothing stays frozen: the caller's garbage is collected
# as before; `trainlab` commands freeze theirs (cli.entry).
_collecting = gc.isenabled()
gc.disable()
try:
    from trainlab.backprop import Backprop
    from trainlab.config import RunConfig, expand, load_config
    from trainlab.data import EXAMPLE_XOR_CSV, Dataset, make_dataset
    from trainlab.doctor import Diagnosis, diagnose
    from trainlab.errors import BadInput
    from trainlab.experiments import load as experiment
    from trainlab.findings import Summary
    from trainlab.gradcheck import describe_bugs as planted_bugs
    from trainlab.gradcheck import gradcheck, scalar_demo
    from trainlab.history import RunResult
    from trainlab.models import build_model
    from trainlab.runner import Results, run
    from trainlab.stats import Estimate, mean_ci, welch_p
    from trainlab.train import train
finally:
    if not gc.get_freeze_count():  # (a caller's own frozen objects stay frozen)
        gc.freeze()
        gc.unfreeze()
    if _collecting:
        gc.enable()

PLOTS = ("plot_boundary", "plot_data", "plot_history")

__all__ = [
    "EXAMPLE_XOR_CSV",
    "Backprop",
    "BadInput",
    "Dataset",
    "Diagnosis",
    "Estimate",
    "Results",
    "RunConfig",
    "RunResult",
    "Summary",
    "build_model",
    "diagnose",
    "expand",
    "experiment",
    "gradcheck",
    "load_config",
    "make_dataset",
    "mean_ci",
    "planted_bugs",
    "run",
    "scalar_demo",
    "train",
    "welch_p",
    *PLOTS,
]


def __getattr__(name: str):
    # The plots load matplotlib (~1 s): only when a figure is asked for, not on every `import trainlab`.
    if name in PLOTS:
        from trainlab import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
