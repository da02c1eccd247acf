"""What the page draws of a model: its output over the plane, each neuron's output, its weights, its scores.

Maps are square grids over the data's raw (x1, x2) plane, row 0 at the top, sent as base64 bytes
(0–255) because JSON lists of floats would be ten times larger at 30 updates a second.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import torch
from torch import nn

from trainlab import metrics
from trainlab.data import Dataset
from trainlab.models import evaluating, linear_layers
from trainlab.train import predict

OUTPUT_GRID = 64  # the big plot
NEURON_GRID = 24  # each neuron's thumbnail (hovering one shows it big, smoothed)
SMALL_NEURON_GRID = 12  # in layers wider than WIDE_LAYER, whose thumbnails are a few pixels across
WIDE_LAYER = 16


def encode(values: np.ndarray) -> str:
    """Values in [0, 1] as base64 bytes."""
    return base64.b64encode(np.clip(np.rint(values * 255), 0, 255).astype(np.uint8).tobytes()).decode()


def signed(values: np.ndarray, scale: float) -> str:
    """Values in [-scale, scale] as bytes with 0 at 127.5."""
    return encode((values / max(scale, 1e-12) + 1) / 2)


class Views:
    def __init__(self, data: Dataset, max_units: int = 0):
        self.data = data
        self.neuron_grid = SMALL_NEURON_GRID if max_units > WIDE_LAYER else NEURON_GRID
        raw = np.vstack([data.raw_train, data.raw_val])
        lo, hi = raw.min(axis=0), raw.max(axis=0)
        centre, half = (lo + hi) / 2, max((hi - lo).max() / 2 * 1.1, 1e-6)
        # square, so the picture is not stretched
        self.extent = [centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half]
        self._grids = {n: data.prepare(self._plane(n)) for n in {OUTPUT_GRID, NEURON_GRID, self.neuron_grid}}
        targets = np.concatenate([data.y_train, data.y_val])
        self.target_scale = float(np.abs(targets).max()) if data.regression else 1.0

    def _plane(self, n: int) -> np.ndarray:
        x0, x1, y0, y1 = self.extent
        xs = np.linspace(x0, x1, n)
        ys = np.linspace(y1, y0, n)  # top row first
        xx, yy = np.meshgrid(xs, ys)
        return np.c_[xx.ravel(), yy.ravel()]

    def _inputs(self, n: int, model: nn.Module) -> torch.Tensor:
        return torch.tensor(self._grids[n], dtype=next(model.parameters()).dtype)

    def points(self) -> dict:
        """The data, once per session: raw coordinates and labels (or targets) of train and val."""
        d = self.data
        as_list = (lambda y: np.round(y, 4).tolist()) if d.regression else (lambda y: y.tolist())
        return {
            "train": {"x": np.round(d.raw_train, 4).tolist(), "y": as_list(d.y_train)},
            "val": {"x": np.round(d.raw_val, 4).tolist(), "y": as_list(d.y_val)},
        }

    def inputs(self) -> list[str]:
        """Each input feature over the plane (as the model sees it, after scaling)."""
        Z = self._grids[NEURON_GRID]
        return [signed(Z[:, j], np.abs(Z[:, j]).max()) for j in range(Z.shape[1])]

    @torch.no_grad()
    def output(self, model: nn.Module) -> dict:
        """Regression: the prediction; two classes: P(class 1); more: the winning class and its probability."""
        with evaluating(model):  # without dropout, also when drawn mid-epoch (parked between minibatches)
            out = model(self._inputs(OUTPUT_GRID, model))
        if self.data.regression:
            return {"kind": "value", "map": signed(out[:, 0].numpy(), self.target_scale), "scale": self.target_scale}
        probs = torch.softmax(out, dim=1)
        if probs.shape[1] == 2:
            return {"kind": "probability", "map": encode(probs[:, 1].numpy())}
        best, cls = probs.max(dim=1)
        return {"kind": "classes", "map": encode(cls.numpy() / 255), "confidence": encode(best.numpy())}

    def scores(self, model: nn.Module) -> dict:
        """The model's ``trainlab.metrics`` on the val split: macro F1 and the confusion matrix, or
        RMSE, MAE and R² (the output panel shows them)."""
        d = self.data
        predicted = predict(model, torch.tensor(d.X_val, dtype=next(model.parameters()).dtype))
        scores = metrics.of_predictions(d.task, d.n_classes, {"val": (d.y_val, predicted[None])})[0]["val"]
        keep = ("rmse", "mae", "r2") if d.regression else ("macro_f1", "confusion")
        return {k: v if k == "confusion" or math.isfinite(v) else None for k, v in scores.items() if k in keep}

    @torch.no_grad()
    def neurons(self, model: nn.Module) -> list[str]:
        """Every hidden unit's output over the plane, each scaled by its own largest value: per layer,
        one string of bytes, unit after unit (``neuron_grid``² bytes each), rows from the top."""
        x, maps = self._inputs(self.neuron_grid, model), []
        with evaluating(model):
            for module in model[:-1]:
                x = module(x)
                if not isinstance(module, nn.Linear):  # after the activation: what the unit passes on
                    a = x.numpy().T  # (units, points)
                    scale = np.maximum(np.abs(a).max(axis=1, keepdims=True), 1e-12)
                    maps.append(encode((a / scale + 1) / 2))
        return maps


def weights(model: nn.Module) -> list[dict]:
    """Each layer's weights (``shape`` [out, in], row after row) and biases, as base64 float32 bytes:
    a quarter of their size as JSON numbers, and read without parsing."""
    def packed(t: torch.Tensor) -> str:
        return base64.b64encode(t.detach().numpy().astype("<f4").tobytes()).decode()

    return [{"shape": list(layer.weight.shape), "w": packed(layer.weight), "b": packed(layer.bias)}
            for layer in linear_layers(model)]
