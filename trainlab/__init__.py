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

# Where each public name lives (module, name there). They are imported on first use (PEP 562):
# every `trainlab` command imports trainlab.config, and with it this package, before it knows
# whether it needs torch, scikit-learn and matplotlib (2 s to import).
_EXPORTS = {
    "Backprop": ("trainlab.backprop", "Backprop"),
    "RunConfig": ("trainlab.config", "RunConfig"),
    "expand": ("trainlab.config", "expand"),
    "load_config": ("trainlab.config", "load_config"),
    "EXAMPLE_XOR_CSV": ("trainlab.data", "EXAMPLE_XOR_CSV"),
    "Dataset": ("trainlab.data", "Dataset"),
    "make_dataset": ("trainlab.data", "make_dataset"),
    "Diagnosis": ("trainlab.doctor", "Diagnosis"),
    "diagnose": ("trainlab.doctor", "diagnose"),
    "BadInput": ("trainlab.errors", "BadInput"),
    "experiment": ("trainlab.experiments", "load"),
    "Summary": ("trainlab.findings", "Summary"),
    "planted_bugs": ("trainlab.gradcheck", "describe_bugs"),
    "gradcheck": ("trainlab.gradcheck", "gradcheck"),
    "scalar_demo": ("trainlab.gradcheck", "scalar_demo"),
    "RunResult": ("trainlab.history", "RunResult"),
    "build_model": ("trainlab.models", "build_model"),
    "plot_boundary": ("trainlab.plots", "plot_boundary"),
    "plot_confusion": ("trainlab.plots", "plot_confusion"),
    "plot_data": ("trainlab.plots", "plot_data"),
    "plot_history": ("trainlab.plots", "plot_history"),
    "Results": ("trainlab.runner", "Results"),
    "run": ("trainlab.api", "run"),
    "Estimate": ("trainlab.stats", "Estimate"),
    "mean_ci": ("trainlab.stats", "mean_ci"),
    "welch_p": ("trainlab.stats", "welch_p"),
    "train": ("trainlab.api", "train"),
    "Model": ("trainlab.trained", "Model"),
    "load_model": ("trainlab.trained", "load_model"),
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
