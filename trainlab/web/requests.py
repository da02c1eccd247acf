"""What the browser sends, turned into configs the library runs: validated, limited, free of file paths.

A playground request is ``{"config": {data, model, optim, train}, "seed": 0, "upload": null}``;
compare mode adds ``"vary": {"model.activation": ["sigmoid", "relu"]}`` and ``"seeds": 5``. The
result is an ordinary RunConfig (``seeds`` = the run seed, or the compare seeds; ``grid`` = vary), so
what the browser runs is exactly what an exported TOML runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from trainlab.config import RunConfig, config_from_dict, expand
from trainlab.data import Dataset, make_dataset
from trainlab.errors import BadInput
from trainlab.web.limits import Limits, RequestRefused
from trainlab.web.uploads import Upload, Uploads

SECTIONS = ("data", "model", "optim", "train")
# Compare mode trains every setting on the same data, so only these may vary.
VARY_PREFIXES = ("model.", "optim.", "train.")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Request:
    config: RunConfig
    seed: int
    upload: Upload | None

    @property
    def compare(self) -> bool:
        return bool(self.config.grid)


def parse_request(body: Any, uploads: Uploads, limits: Limits, compare: bool = False) -> Request:
    """A RunConfig for one training session (or, with ``compare``, a grid over seeds), or RequestRefused.

    Every limit is checked here, before any data is made: for a comparison, on every setting.
    """
    if not isinstance(body, dict):
        raise RequestRefused("expected a JSON object with a 'config'")
    raw = body.get("config", {})
    if not isinstance(raw, dict):
        raise RequestRefused("config: expected an object with data, model, optim and train sections")
    for key, section in raw.items():
        if key not in SECTIONS:
            raise RequestRefused(f"config.{key}: not accepted from the browser (expected {', '.join(SECTIONS)})")
        if not isinstance(section, dict):
            raise RequestRefused(f"config.{key}: expected an object of settings (got {type(section).__name__})")
    seed = body.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise RequestRefused(f"seed: expected an integer from 0 to {MAX_SEED} (got {seed!r})")
    data = dict(raw.get("data") or {})
    if "path" in data:
        raise RequestRefused("data.path: file paths are not accepted from the browser; upload a CSV instead")
    upload = None
    if data.get("name") == "csv":
        upload = uploads.get(body.get("upload"))
        data["path"] = str(upload.path)
    raw = {**raw, "data": data, "name": "playground", "seeds": [seed]}
    if compare:
        vary, seeds = _vary(body.get("vary")), body.get("seeds", 5)
        if not isinstance(seeds, int) or isinstance(seeds, bool):
            raise RequestRefused(f"seeds: expected a count of seeds (got {seeds!r})")
        if len(vary) > limits.max_vary_keys:
            raise RequestRefused(f"vary: at most {limits.max_vary_keys} settings varied at once (got {len(vary)})")
        limits.check_compare(math.prod(len(v) for v in vary.values()), seeds)
        raw["grid"], raw["seeds"] = vary, seeds
    try:
        cfg = config_from_dict(raw, source="config")
    except BadInput as e:
        raise RequestRefused(str(e)) from None
    rows = upload.rows if upload else None
    limits.check(cfg, rows)
    if compare:
        settings = list({spec.group: spec.config for spec in expand(cfg)}.values())
        for setting in settings:
            try:
                limits.check(setting, rows)
            except RequestRefused as e:
                raise RequestRefused(f"vary: {e}", e.status) from None
        limits.check_compare_work(settings, len(cfg.seed_list), rows)
    return Request(cfg, seed, upload)


def make_data(request: Request, limits: Limits) -> Dataset:
    """The request's data set (call it off the event loop); errors name the uploaded file, never the
    server's copy of it."""
    try:
        data = make_dataset(request.config.data)
    except BadInput as e:
        message = str(e)
        if request.upload is not None:
            message = message.replace(str(request.upload.path), request.upload.filename)
        raise RequestRefused(message) from None
    limits.check_data(data)
    return data


def _vary(vary: Any) -> dict[str, list[Any]]:
    if not isinstance(vary, dict) or not vary:
        raise RequestRefused("vary: expected an object such as {\"model.activation\": [\"sigmoid\", \"relu\"]}")
    for key, values in vary.items():
        if not key.startswith(VARY_PREFIXES):
            raise RequestRefused(f"vary.{key}: compare mode varies model.*, optim.* or train.* settings "
                                 "(every setting trains on the same data)")
        if not isinstance(values, list) or not values:
            raise RequestRefused(f"vary.{key}: expected a list of values")
    return vary
