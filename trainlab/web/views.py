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
        # The output map's points, then the unit maps': one forward pass over both draws every map.
        self._map_points = np.vstack([self._grids[OUTPUT_GRID], self._grids[self.neuron_grid]])
        self._tensors: dict[tuple[str, torch.dtype], torch.Tensor] = {}  # inputs as a model's dtype, made once
        targets = np.concatenate([data.y_train, data.y_val])
        self.target_scale = float(np.abs(targets).max()) if data.regression else 1.0

    def _plane(self, n: int) -> np.ndarray:
        x0, x1, y0, y1 = self.extent
        xs = np.linspace(x0, x1, n)
        ys = np.linspace(y1, y0, n)  # top row first
        xx, yy = np.meshgrid(xs, ys)
        return np.c_[xx.ravel(), yy.ravel()]

    def _tensor(self, rows: str, model: nn.Module) -> torch.Tensor:
        """``"map_points"`` or ``"val"`` as a tensor of ``model``'s dtype."""
        key = (rows, next(model.parameters()).dtype)
        if key not in self._tensors:
            self._tensors[key] = torch.tensor(self._map_points if rows == "map_points" else self.data.X_val,
                                              dtype=key[1])
        return self._tensors[key]

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

    def output(self, model: nn.Module) -> dict:
        """Regression: the prediction; two classes: P(class 1); more: the winning class and its probability."""
        return self.maps(model, neurons=False)[0]

    @torch.inference_mode()
    def maps(self, model: nn.Module, neurons: bool = True) -> tuple[dict, list[str] | None]:
        """The output map (``output``) and, if ``neurons``, every hidden unit's output over the plane,
        each scaled by its own largest value: per layer, one string of bytes, unit after unit
        (``neuron_grid``² bytes each), rows from the top. One forward pass draws both."""
        n = OUTPUT_GRID**2
        x = self._tensor("map_points", model)
        x, units = (x, []) if neurons else (x[:n], None)
        with evaluating(model):  # without dropout, also when drawn mid-epoch (parked between minibatches)
            for module in model[:-1]:
                x = module(x)
                if neurons and not isinstance(module, nn.Linear):  # after the activation: what the unit passes on
                    a = x[n:].numpy().T  # (units, points)
                    scale = np.maximum(np.abs(a).max(axis=1, keepdims=True), 1e-12)
                    units.append(encode((a / scale + 1) / 2))
            out = model[-1](x[:n])
        return self._output_map(out), units

    def _output_map(self, out: torch.Tensor) -> dict:
        """``output`` from the model's outputs over the output grid."""
        if self.data.regression:
            return {"kind": "value", "map": signed(out[:, 0].numpy(), self.target_scale), "scale": self.target_scale}
        if out.shape[1] == 2:
            return {"kind": "probability", "map": encode(torch.sigmoid(out[:, 1] - out[:, 0]).numpy())}  # softmax(out)[:, 1]
        top, cls = out.max(dim=1)
        best = (out - top[:, None]).exp_().sum(dim=1).reciprocal_()  # the winner's softmax probability
        return {"kind": "classes", "map": encode(cls.numpy() / 255), "confidence": encode(best.numpy())}

    def scores(self, model: nn.Module) -> dict:
        """The model's ``trainlab.metrics`` on the val split: macro F1 and the confusion matrix, or
        RMSE, MAE and R² (the output panel shows them)."""
        d = self.data
        predicted = predict(model, self._tensor("val", model))
        scores = metrics.of_predictions(d.task, d.n_classes, {"val": (d.y_val, predicted[None])})[0]["val"]
        keep = ("rmse", "mae", "r2") if d.regression else ("macro_f1", "confusion")
        return {k: v if k == "confusion" or math.isfinite(v) else None for k, v in scores.items() if k in keep}


def weights(model: nn.Module) -> list[dict]:
    """Each layer's weights (``shape`` [out, in], row after row) and biases, as base64 float32 bytes:
    a quarter of their size as JSON numbers, and read without parsing."""
    def packed(t: torch.Tensor) -> str:
        return base64.b64encode(t.detach().numpy().astype("<f4").tobytes()).decode()

    return [{"shape": list(layer.weight.shape), "w": packed(layer.weight), "b": packed(layer.bias)}
            for layer in linear_layers(model)]
