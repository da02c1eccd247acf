"""trainlab: train small neural networks and see what happens.

    import trainlab as tl
    cfg = tl.load_config("moons.toml")
    result = tl.train(cfg, seed=0)          # one run, the reference engine
    results = tl.run(cfg, out="runs/moons") # every grid point × seed, stored and plotted
"""

from trainlab.config import RunConfig, expand, load_config
from trainlab.data import Dataset, make_dataset
from trainlab.doctor import Diagnosis, diagnose
from trainlab.errors import BadInput
from trainlab.gradcheck import gradcheck
from trainlab.history import RunResult
from trainlab.models import build_model
from trainlab.runner import Results, run
from trainlab.train import train

__all__ = [
    "BadInput",
    "Dataset",
    "Diagnosis",
    "Results",
    "RunConfig",
    "RunResult",
    "build_model",
    "diagnose",
    "expand",
    "gradcheck",
    "load_config",
    "make_dataset",
    "run",
    "train",
]
