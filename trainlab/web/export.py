"""A playground setup as a TOML config that ``trainlab run`` reproduces, or as a short Python snippet."""

from __future__ import annotations

import json
from typing import Any

from trainlab.config import RunConfig, to_toml
from trainlab.web.requests import Request


def _portable(request: Request) -> RunConfig:
    """The config with an uploaded CSV referred to by its file name, to be saved beside the TOML."""
    cfg = request.config
    if request.upload is None:
        return cfg
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": request.upload.filename})})


def toml_text(request: Request) -> str:
    cfg = _portable(request)
    lines = ["# Exported from the trainlab playground. Reproduce it with: trainlab run playground.toml"]
    if request.compare:
        lines.append(f"# Compare mode: every grid setting × {len(cfg.seed_list)} seeds.")
    else:
        lines.append(f"# One run, seed {request.seed}: the same numbers as the playground session.")
    if request.upload is not None:
        lines.append(f"# Save the uploaded points as {request.upload.filename} next to this file.")
    return "\n".join(lines) + "\n\n" + to_toml(cfg)


def python_snippet(request: Request) -> str:
    cfg = _portable(request)
    sections = cfg.model_dump(mode="json", include={"data", "model", "optim", "train"}, exclude_defaults=True)
    sections["data"] = {"name": cfg.data.name, **sections.get("data", {})}  # say which data, even the default
    sections = {k: sections[k] for k in ("data", "model", "optim", "train") if k in sections}
    config = ",\n".join(f"    {name}={_literal(value)}" for name, value in sections.items())
    head = "import trainlab as tl\n\ncfg = tl.RunConfig(\n" + (config + ",\n" if config else "")
    if request.compare:
        return (head + f"    seeds={len(cfg.seed_list)},\n    grid={_literal(cfg.grid)},\n)\n"
                'results = tl.run(cfg, out="runs/playground-compare")  # every setting × seed, with a report\n'
                "for run in results.runs():\n"
                '    print(run["run_id"], run["final_val_loss"])\n')
    return (head + ")\n"
            f"result = tl.train(cfg, seed={request.seed})\n"
            'print(result.summary()["final_val_loss"])\n')


def _literal(value: Any) -> str:
    """JSON data as Python source: JSON's spelling, but True, False and None (strings left as they are)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value) if value is None or isinstance(value, bool) else json.dumps(value)
