"""The reference engine: one model, the plain PyTorch loop a reader of the course would write.

It is the oracle the other engines (population, manual backprop) are tested against, so it
stays simple: shuffled minibatches from a seeded generator, ``torch.optim``, and a full
evaluation of the train and val splits after every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.callbacks import Callback, EarlyStopping
from trainlab.config import RunConfig, RunSpec
from trainlab.data import Dataset, make_dataset
from trainlab.diagnostics import Diagnostics
from trainlab.history import RunResult, best_epoch, new_history
from trainlab.models import build_model
from trainlab.optim import build_optimizer, lr_at

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# Computes the loss of a batch and fills every parameter's ``.grad``; returns the loss.
Gradients = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def autograd_gradients(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    return loss


def train(
    cfg: RunConfig,
    seed: int = 0,
    data: Dataset | None = None,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
    spec: RunSpec | None = None,
    gradients: Gradients = autograd_gradients,
    diagnostics: bool = False,
) -> RunResult:
    """Train one model of ``cfg`` from ``seed`` and return its history, status and weights.

    ``gradients`` is how each batch's gradients are obtained: autograd, or by hand
    (``backprop.manual_gradients``, the ``manual`` engine); the rest of the loop is shared.
    ``diagnostics`` records per-layer gradient norms, dead and saturated units and update/weight
    ratios into ``result.extra`` (see ``diagnostics.Diagnostics``); off by default because on
    models this small they add 20–40% to the run time (benchmarks/diagnostics_overhead.py).
    """
    started = time.perf_counter()
    dtype = DTYPES[cfg.train.dtype]
    data = data if data is not None else make_dataset(cfg.data)
    X_train, y_train = torch.tensor(data.X_train, dtype=dtype), torch.tensor(data.y_train)
    X_val, y_val = torch.tensor(data.X_val, dtype=dtype), torch.tensor(data.y_val)

    # One generator per run: it draws the initial weights, then each epoch's data order.
    generator = torch.Generator().manual_seed(seed)
    model = build_model(cfg.model, data.in_dim, data.n_classes, generator=generator, dtype=dtype)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    stopper = EarlyStopping(cfg.train.early_stopping) if cfg.train.early_stopping else None
    callbacks = [*([Diagnostics(X_train)] if diagnostics else []), *callbacks, *([stopper] if stopper else [])]
    for cb in callbacks:
        cb.on_train_begin(model)

    n = len(X_train)
    batch_size = cfg.train.batch_size or n
    epochs = cfg.train.epochs
    history, status = new_history(), "ok"
    for epoch in range(1, epochs + 1):
        lr = lr_at(cfg.optim, epoch, epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr

        model.train()
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        grad_norms = []
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            gradients(model, X_train[batch], y_train[batch])
            grad_norms.append(global_grad_norm(model))
            for cb in callbacks:
                cb.on_after_backward(model)
            optimizer.step()

        train_loss, train_acc = evaluate(model, X_train, y_train)
        val_loss, val_acc = evaluate(model, X_val, y_val)
        record = {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_acc": train_acc,
            "val_acc": val_acc,
            "lr": lr,
            "grad_norm": torch.stack(grad_norms).mean().item(),
        }
        for column, value in record.items():
            history[column].append(value)

        if not math.isfinite(train_loss):
            status = "diverged"  # the weights are NaN/inf now: nothing more to learn
            break
        if any([cb.on_epoch_end(epoch, model, record) for cb in callbacks]):
            status = "early_stopped"
            break

    final_epoch = len(history["train_loss"])
    if stopper is not None:
        best = stopper.best_epoch or 1
        if stopper.best_state is not None and status != "diverged":
            model.load_state_dict(stopper.best_state)
            final_epoch = best
    else:
        best = best_epoch(history["val_loss"])

    test_acc = None
    if data.X_test is not None:
        _, test_acc = evaluate(model, torch.tensor(data.X_test, dtype=dtype), torch.tensor(data.y_test))

    result = RunResult(
        spec=spec or RunSpec(
            run_id=f"{cfg.experiment_name}/seed={seed}",
            experiment=cfg.experiment_name,
            group=cfg.experiment_name,
            seed=seed,
            grid_values={},
            config=cfg,
        ),
        history=history,
        status=status,
        best_epoch=best,
        final_epoch=final_epoch,
        test_acc=test_acc,
        params={k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
        seconds=time.perf_counter() - started,
    )
    for cb in callbacks:
        cb.on_train_end(model, result)
    return result


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on the whole split."""
    model.eval()
    logits = model(X)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(dim=1) == y).double().mean().item()
    return loss, acc


def global_grad_norm(model: nn.Module) -> torch.Tensor:
    """‖∇‖₂ over all parameters together."""
    return torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None))
