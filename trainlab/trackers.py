"""An output directory in the experiment trackers people already use: MLflow and TensorBoard.

Every run goes across with its config as parameters, its history as per-epoch metrics (step =
epoch) and its summary as final metrics; each experiment's figures and config go along once, with
the experiment (MLflow: a parent run whose children are the runs; TensorBoard: the experiment's
log directory, above its runs'). Needs the extras: ``pip install 'trainlab[mlflow]'`` or
``'trainlab[tensorboard]'``.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.config import RunConfig, config_from_dict, with_values
from trainlab.errors import BadInput
from trainlab.history import HISTORY_COLUMNS
from trainlab.report import FIGURE_CAPTIONS, open_store

# The summary columns that go across as final metrics (the others are tags or parameters).
FINAL_METRICS = ("epochs_run", "best_epoch", "final_train_loss", "final_val_loss", "final_train_acc",
                 "final_val_acc", "best_val_acc", "test_acc", "seconds")


@dataclass
class ExportedRun:
    run_id: str
    params: dict[str, str]  # the run's config, flattened to dotted keys, and its seed
    tags: dict[str, str]  # experiment, group, status
    history: dict[str, Any]  # epoch and HISTORY_COLUMNS arrays
    final: dict[str, float]


@dataclass
class ExportedExperiment:
    name: str
    config_toml: str
    figures: dict[str, Path]  # the report's PNG files by kind
    runs: list[ExportedRun]


def read_out_dir(out_dir: Path) -> Iterator[ExportedExperiment]:
    """What an export sends, an experiment at a time, from ``out_dir``'s store and figures."""
    with open_store(out_dir) as store:
        for e in store.experiments():
            name = e["experiment"]
            cfg = config_from_dict(tomllib.loads(e["config_toml"]), source=f"{out_dir} ({name})")
            figures = {kind: out_dir / f"{name}-{kind}.png" for kind in FIGURE_CAPTIONS
                       if (out_dir / f"{name}-{kind}.png").is_file()}
            runs = [ExportedRun(
                run_id=r["run_id"],
                params={**run_params(cfg, r["grid"]), "seed": str(r["seed"])},
                tags={"trainlab.run_id": r["run_id"], "trainlab.experiment": name, "trainlab.group": r["group"],
                      "trainlab.status": r["status"]},
                history=store.history(r["run_id"]),
                final={m: float(r[m]) for m in FINAL_METRICS if r[m] is not None and math.isfinite(r[m])},
            ) for r in store.runs(name)]
            yield ExportedExperiment(name, e["config_toml"], figures, runs)


def run_params(cfg: RunConfig, grid_values: dict[str, Any]) -> dict[str, str]:
    """The config of one run (its grid point or trial) as flat dotted keys with text values."""
    point = with_values(cfg, grid_values, "export")
    return {k: str(v) for k, v in flatten(point.model_dump(mode="json", exclude={"grid", "search", "seeds"})).items()}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def epoch_values(history: dict[str, Any]) -> Iterator[tuple[str, int, float]]:
    """(column, epoch, value) of each finite value of a history."""
    for column in HISTORY_COLUMNS:
        for epoch, value in zip(history["epoch"].tolist(), history[column].tolist()):
            if math.isfinite(value):
                yield column, epoch, value


# ---------------------------------------------------------------------------- MLflow


MLFLOW_DB = "mlflow.db"  # the default tracking store, in the output directory
MLFLOW_ARTIFACTS = "mlartifacts"  # and its artifacts (figures, config)
# MLflow takes at most this many metrics, params and tags in one log_batch call.
MLFLOW_BATCH = 1000


def to_mlflow(out_dir: str | Path, tracking_uri: str | None = None) -> tuple[str, int]:
    """Log every run of ``out_dir`` to MLflow (default: a SQLite store, ``OUT_DIR/mlflow.db``), one MLflow
    experiment per trainlab experiment, named ``OUT_DIR-NAME/EXPERIMENT``; the tracking URI and the
    number of runs logged."""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise BadInput("trainlab export mlflow needs MLflow: pip install 'trainlab[mlflow]'") from None
    out_dir = Path(out_dir)
    experiments = list(read_out_dir(out_dir))
    uri = tracking_uri or f"sqlite:///{(out_dir / MLFLOW_DB).resolve()}"
    # a local store keeps its artifacts beside it (MLflow's default is ./mlruns, wherever one stands)
    artifacts = None if tracking_uri else (out_dir / MLFLOW_ARTIFACTS).resolve().as_uri()
    client = MlflowClient(tracking_uri=uri)
    names = {e.name: f"{out_dir.resolve().name}/{e.name}" for e in experiments}
    for name in names.values():
        if client.get_experiment_by_name(name) is not None:
            raise BadInput(f"{uri}: MLflow already has an experiment {name!r} (exported before? delete it there, "
                           "or pass another --tracking-uri)")
    count = 0
    for e in experiments:
        experiment_id = client.create_experiment(names[e.name], artifact_location=artifacts and f"{artifacts}/{e.name}")
        parent = client.create_run(experiment_id, run_name=e.name, tags={"trainlab.experiment": e.name}).info.run_id
        client.log_text(parent, e.config_toml, "config.toml")
        for kind, png in e.figures.items():
            client.log_artifact(parent, str(png), "figures")
        client.set_terminated(parent)
        now = int(time.time() * 1000)
        for r in e.runs:
            run = client.create_run(experiment_id, run_name=r.run_id,
                                    tags={"mlflow.parentRunId": parent, **r.tags}).info.run_id
            entities = [Param(k, v) for k, v in r.params.items()]
            entities += [Metric(c, v, now, epoch) for c, epoch, v in epoch_values(r.history)]
            entities += [Metric(k, v, now, 0) for k, v in r.final.items()]
            for start in range(0, len(entities), MLFLOW_BATCH):
                part = entities[start : start + MLFLOW_BATCH]
                client.log_batch(run, metrics=[x for x in part if isinstance(x, Metric)],
                                 params=[x for x in part if isinstance(x, Param)])
            client.set_terminated(run)
            count += 1
    return uri, count


# ---------------------------------------------------------------------------- TensorBoard


def to_tensorboard(out_dir: str | Path, log_dir: str | Path | None = None) -> tuple[Path, int]:
    """Write TensorBoard event files for every run of ``out_dir`` into ``log_dir`` (default
    ``OUT_DIR/tensorboard``), a directory per run (its run id); the log directory and the number of runs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise BadInput("trainlab export tensorboard needs TensorBoard: pip install 'trainlab[tensorboard]'") from None
    import matplotlib.image

    out_dir = Path(out_dir)
    experiments = list(read_out_dir(out_dir))
    log_dir = Path(log_dir) if log_dir else out_dir / "tensorboard"
    if log_dir.exists() and any(log_dir.iterdir()):
        raise BadInput(f"--log-dir {log_dir}: not empty (exported before? delete it, or pass another --log-dir)")
    count = 0
    for e in experiments:
        with SummaryWriter(str(log_dir / e.name)) as writer:
            writer.add_text("config", "\n".join(f"    {line}" for line in e.config_toml.splitlines()))
            for kind, png in e.figures.items():
                writer.add_image(kind, matplotlib.image.imread(png)[:, :, :3], dataformats="HWC")
        for r in e.runs:
            with SummaryWriter(str(log_dir / r.run_id)) as writer:
                for column, epoch, value in epoch_values(r.history):
                    writer.add_scalar(column, value, epoch)
                writer.add_hparams({**r.params, **r.tags}, {f"hparam/{k}": v for k, v in r.final.items()},
                                   run_name=".")
            count += 1
    return log_dir, count
