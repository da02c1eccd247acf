"""trainlab: train small neural networks and see what happens.

    import trainlab as tl
    cfg = tl.load_config("moons.toml")
    result = tl.train(cfg, seed=0)          # one run, the reference engine
    results = tl.run(cfg, out="runs/moons") # every grid point × seed, stored and plotted
    cfg = tl.experiment("activations")      # a built-in lab experiment
    model = tl.load_model("runs/moons", best=True)   # a stored run to use: model.predict(X), .save(path)
"""

import importlib
import sys
import types

from trainlab.imports import gc_paused

# The public names by the module they live in. They are imported on first use (PEP 562): every
# `trainlab` command imports trainlab.config, and with it this package, before it knows whether it
# needs torch, scikit-learn and matplotlib (2 s to import).
_MODULES = {
    "trainlab.api": ("run", "train"),
    "trainlab.backprop": ("Backprop",),
    "trainlab.config": ("RunConfig", "expand", "load_config"),
    "trainlab.data": ("EXAMPLE_XOR_CSV", "Dataset", "make_dataset"),
    "trainlab.doctor": ("Diagnosis", "diagnose"),
    "trainlab.errors": ("BadInput",),
    "trainlab.findings": ("Summary",),
    "trainlab.gradcheck": ("gradcheck", "scalar_demo"),
    "trainlab.history": ("RunResult",),
    "trainlab.models": ("build_model",),
    "trainlab.plots": ("plot_boundary", "plot_confusion", "plot_data", "plot_history"),
    "trainlab.runner": ("Results",),
    "trainlab.stats": ("Estimate", "mean_ci", "welch_p"),
    "trainlab.trained": ("Model", "load_model"),
}
# Each public name: (module, its name there), two of them renamed.
_EXPORTS = {name: (module, name) for module, names in _MODULES.items() for name in names} | {
    "experiment": ("trainlab.experiments", "load"),
    "planted_bugs": ("trainlab.gradcheck", "describe_bugs"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    with gc_paused():
        value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Importing a submodule binds it as an attribute of its package: `import trainlab.train`
    would make `tl.train` the module, not the function it exports. The exports keep their names."""

    def __setattr__(self, name: str, value) -> None:
        if not (name in _EXPORTS and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
