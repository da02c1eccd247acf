"""The reference engine: one model, the plain PyTorch loop a reader of the course would write.

It is the oracle the other engines (population, manual backprop) are tested against, so it
stays simple: shuffled minibatches from a seeded generator, ``torch.optim``, and a full
evaluation of the train and val splits after every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.linalg import vector_norm

from trainlab import metrics, rng
from trainlab.callbacks import Callback, EarlyStopping
from trainlab.config import RunConfig, RunSpec
from trainlab.data import Dataset, make_dataset
from trainlab.diagnostics import Diagnostics
from trainlab.history import HISTORY_COLUMNS, RunResult, as_history, best_epoch, diverged, divergence_limit
from trainlab.models import build_model, evaluating, forward_keeping_hidden, linear_layers, set_dropout_step
from trainlab.optim import build_optimizer, lr_at
from trainlab.threads import small_model_threads

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# Computes the loss of a batch and fills every parameter's ``.grad``; returns the loss.
Gradients = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def loss_fn(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class labels; mean squared error for real-valued (regression) targets."""
    if y.is_floating_point():
        return F.mse_loss(outputs[:, 0], y)
    return F.cross_entropy(outputs, y)


def autograd_gradients(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(model(X), y)
    loss.backward()
    return loss


def train(cfg: RunConfig, seed: int = 0, data: Dataset | None = None, spec: RunSpec | None = None,
          gradients: Gradients = autograd_gradients, diagnostics: bool = True) -> RunResult:
    """Train one model of ``cfg`` from ``seed`` and return its history, status and weights.

    ``gradients`` is how each batch's gradients are obtained: autograd, or by hand
    (``backprop.manual_gradients``, the ``manual`` engine); the rest of the loop is shared.
    ``diagnostics`` records per-layer gradient norms, dead and saturated units and update/weight
    ratios into ``result.extra`` (``trainlab.diagnostics``; their cost: benchmarks/diagnostics_overhead.py).
    A small model trains on one torch thread unless the user chose a count (threads.py).
    """
    training = Training(cfg, seed, data, gradients, diagnostics)
    with small_model_threads(training.weights, training.batch_rows):
        for _ in training.epochs():
            pass
        return training.result(spec)


class Training:
    """One model of ``cfg`` and everything its training keeps: data, optimizer, history, status.

    ``epochs()`` is the training loop, one epoch per step: ``train`` runs it to the end, the web
    playground a few epochs at a time. The hooks (early stopping, diagnostics) and the playground
    read the run's state from the attributes.
    """

    def __init__(self, cfg: RunConfig, seed: int = 0, data: Dataset | None = None,
                 gradients: Gradients = autograd_gradients, diagnostics: bool = True):
        self.started = time.perf_counter()
        self.cfg, self.seed, self.gradients = cfg, seed, gradients
        self.dtype = dtype = DTYPES[cfg.train.dtype]
        self.data = data = data if data is not None else make_dataset(cfg.data)
        self.X_train, self.y_train = torch.tensor(data.X_train, dtype=dtype), self.targets(data.y_train)
        self.X_val, self.y_val = torch.tensor(data.X_val, dtype=dtype), self.targets(data.y_val)

        # One generator per run draws the initial weights; the data orders and dropout masks come
        # from trainlab.rng.
        generator = torch.Generator().manual_seed(seed)
        self.model = build_model(cfg.model, data.in_dim, data.n_classes, generator=generator, dtype=dtype)
        self.optimizer = build_optimizer(cfg.optim, self.model.parameters())
        self.parameters = [p for m in linear_layers(self.model) for p in (m.weight, m.bias)]  # W_1, b_1, …, W_L, b_L
        # L1 acts through its gradient, l1·sign(w), as L2 (weight_decay) acts inside torch.optim: the
        # history's losses stay the data loss either way.
        self.l1_weights = [m.weight for m in linear_layers(self.model)] if cfg.optim.l1 else []
        self.dropout = any(cfg.model.dropouts)  # the model has dropout layers, told each step's number

        self.diagnostics = Diagnostics(self.model) if diagnostics else None
        self.stopper = EarlyStopping(cfg.train.early_stopping) if cfg.train.early_stopping else None
        self.hooks: list[Callback] = [hook for hook in (self.diagnostics, self.stopper) if hook]

        self.epoch, self.status = 0, "ok"
        self.history = {column: [] for column in HISTORY_COLUMNS}  # a list per column, a value per epoch
        self.grad_squares = torch.empty(0)  # (steps, layers): ‖∇(W_l, b_l)‖² of the epoch's steps
        self.hidden: list[tuple[nn.Module, torch.Tensor]] = []  # each hidden layer's output on the train rows

    @property
    def weights(self) -> int:
        return sum(p.numel() for p in self.parameters)

    @property
    def batch_rows(self) -> int:
        n = len(self.X_train)
        return min(self.cfg.train.batch_size or n, n)

    def targets(self, y) -> torch.Tensor:
        return torch.tensor(y, dtype=self.dtype) if self.data.regression else torch.tensor(y)

    @property
    def done(self) -> bool:
        return self.status != "ok" or self.epoch >= self.cfg.train.epochs

    def epochs(self) -> Iterator[dict[str, float]]:
        """Train epoch after epoch, yielding each one's record, until the last epoch or an early end."""
        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        untrained_loss, _ = evaluate(model, self.X_train, self.y_train)
        limit = divergence_limit(untrained_loss)  # the train loss past which the run has diverged
        for self.epoch in range(1, cfg.train.epochs + 1):
            lr = lr_at(cfg.optim, self.epoch, cfg.train.epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr

            model.train()
            step_norms = []  # per step: ‖∇W_l‖, ‖∇b_l‖ of every layer
            for step, (X, y) in enumerate(self.minibatches()):
                optimizer.zero_grad()
                if self.dropout:
                    set_dropout_step(model, self.seed, self.epoch, step)  # its masks: a function of the step
                self.gradients(model, X, y)  # forward, loss, backward
                for w in self.l1_weights:
                    w.grad.add_(torch.sign(w), alpha=cfg.optim.l1)
                step_norms.append(torch.stack([vector_norm(p.grad) for p in self.parameters]))
                for hook in self.hooks:
                    hook.on_step_begin(self, step)
                optimizer.step()
                for hook in self.hooks:
                    hook.on_step_end(self, step)

            model.eval()
            with torch.no_grad():
                outputs, self.hidden = forward_keeping_hidden(model, self.X_train)
            train_loss, train_acc = score(outputs, self.y_train)
            val_loss, val_acc = evaluate(model, self.X_val, self.y_val)
            squares = torch.stack(step_norms).square()  # (steps, 2L)
            self.grad_squares = squares.view(len(squares), -1, 2).sum(dim=2)  # ‖∇(W_l, b_l)‖² per step and layer
            record = {
                "train_loss": train_loss,
                "val_loss": val_loss,
                "train_acc": train_acc,
                "val_acc": val_acc,
                "lr": lr,
                "grad_norm": self.grad_squares.sum(dim=1).sqrt().mean().item(),  # ‖∇‖ over all parameters
            }
            for column, value in record.items():
                self.history[column].append(value)

            if diverged(train_loss, limit):
                self.status = "diverged"  # the weights are lost: nothing more to learn
            stop = [hook.on_epoch_end(self) for hook in self.hooks]  # every hook sees every epoch
            if self.status == "ok" and any(stop):
                self.status = "early_stopped"
            yield record
            if self.status != "ok":
                return

    def minibatches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's minibatches of the training split, in the run's order for this epoch (``rng``)."""
        n, batch_size = len(self.X_train), self.batch_rows
        X, y = self.X_train, self.y_train
        if batch_size < n:  # shuffled once, then sliced: a slice is a view, where indexing copies
            order = torch.from_numpy(rng.permutation(self.seed, self.epoch, n))
            X, y = X[order], y[order]
        for start in range(0, n, batch_size):
            yield X[start : start + batch_size], y[start : start + batch_size]

    def result(self, spec: RunSpec | None = None) -> RunResult:
        """The finished run (restoring the best weights if early stopping says so)."""
        cfg, model, data, history, status = self.cfg, self.model, self.data, self.history, self.status
        final_epoch = len(history["train_loss"])
        if self.stopper is not None:
            best = self.stopper.best_epoch or 1
            if self.stopper.best_state is not None and status != "diverged":
                model.load_state_dict(self.stopper.best_state)
                final_epoch = best
        else:
            best = best_epoch(history["val_loss"])

        test_acc = None
        splits = {"val": (data.y_val, predict(model, self.X_val))}
        if data.X_test is not None:
            X_test = torch.tensor(data.X_test, dtype=self.dtype)
            _, test_acc = evaluate(model, X_test, self.targets(data.y_test))
            splits["test"] = (data.y_test, predict(model, X_test))

        name = cfg.experiment_name
        return RunResult(
            spec=spec or RunSpec(run_id=f"{name}/seed={self.seed}", experiment=name, group=name, seed=self.seed,
                                 grid_values={}, config=cfg),
            history=as_history(history),
            status=status,
            best_epoch=best,
            final_epoch=final_epoch,
            test_acc=test_acc,
            params={k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
            seconds=time.perf_counter() - self.started,
            extra=dict(self.diagnostics.extra) if self.diagnostics else {},
            metrics=metrics.of_predictions(data.task, data.n_classes,
                                           {split: (y, p[None]) for split, (y, p) in splits.items()})[0],
        )


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on the whole split (accuracy is NaN for regression)."""
    model.eval()
    return score(model(X), y)


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    """The model's predictions for ``X``: class indices, or the outputs of a regression (1 output).
    Made in eval mode; the model is left in the mode it was in (the playground asks mid-epoch)."""
    with evaluating(model):
        outputs = model(X)
    return (outputs[:, 0] if outputs.shape[1] == 1 else outputs.argmax(dim=1)).numpy()


@torch.no_grad()
def score(outputs: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss and accuracy of the model ``outputs`` for targets ``y``."""
    loss = loss_fn(outputs, y).item()
    if y.is_floating_point():
        return loss, math.nan
    acc = (outputs.argmax(dim=1) == y).double().mean().item()
    return loss, acc

