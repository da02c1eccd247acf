"""The training loop of ``train.py``, batched: K models of one shape trained in lockstep.

Every model is a row of a (K, P) parameter matrix whose slices are the layers (weights
``(K, in, out)``, biases ``(K, 1, out)``), so a forward pass is one ``baddbmm`` per layer for the
whole population and the optimizer updates all rows at once. Autograd differentiates the sum of
the models' losses, which gives each model the gradient of its own loss. A model that diverges or
stops early leaves the population at the end of that epoch; the others carry on undisturbed.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.config import RunSpec
from trainlab.data import Dataset
from trainlab.history import HISTORY_COLUMNS, RunResult, best_epoch
from trainlab.models import ACTIVATION_MODULES, build_model, layer_sizes, linear_layers
from trainlab.optim import lr_at
from trainlab.population.optim import build_batched_optimizer
from trainlab.train import DTYPES

COLUMN = {name: i for i, name in enumerate(HISTORY_COLUMNS)}
# Evaluation runs over slices of this many model-points, so its activations stay bounded.
EVAL_MODEL_POINTS = 1 << 17


class Population:
    """The stacked parameters of K models of one shape, and the layer views into them."""

    def __init__(self, specs: list[RunSpec], data: Dataset):
        cfg = specs[0].config
        self.dtype = DTYPES[cfg.train.dtype]
        self.sizes = layer_sizes(cfg.model, data.in_dim, data.n_classes)
        self.activation = ACTIVATION_MODULES[cfg.model.activation]()
        rows, self.generators = [], []
        for spec in specs:
            # The same generator as the reference engine: it draws the init, then the data orders.
            g = torch.Generator().manual_seed(spec.seed)
            model = build_model(spec.config.model, data.in_dim, data.n_classes, generator=g, dtype=self.dtype)
            rows.append(torch.cat([t.detach().flatten() for layer in linear_layers(model)
                                   for t in (layer.weight.T, layer.bias)]))
            self.generators.append(g)
        self.params = torch.stack(rows)

    def layers(self, params: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(W, b) views of each layer in a (K, P) parameter matrix."""
        out, at = [], 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = params[:, at : at + fan_in * fan_out].view(-1, fan_in, fan_out)
            at += fan_in * fan_out
            out.append((w, params[:, at : at + fan_out].view(-1, 1, fan_out)))
            at += fan_out
        return out

    def forward(self, layers: list[tuple[Tensor, Tensor]], x: Tensor) -> Tensor:
        """Logits (K, B, classes) of inputs ``x`` (K, B, in)."""
        for i, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w)
            if i < len(layers) - 1:
                x = self.activation(x)
        return x

    @torch.no_grad()
    def evaluate(self, params: Tensor, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean cross-entropy and accuracy (float64, one per model) on the whole split."""
        k, n = len(params), len(X)
        losses, accs = [], []
        step = max(1, EVAL_MODEL_POINTS // n)
        for s in range(0, k, step):
            p = params[s : s + step]
            logits = self.forward(self.layers(p), X.expand(len(p), *X.shape))
            nll = F.cross_entropy(logits.transpose(1, 2), y.expand(len(p), n), reduction="none")
            losses.append(nll.mean(1).double())
            accs.append((logits.argmax(dim=2) == y).double().mean(1))
        return torch.cat(losses), torch.cat(accs)

    def state_dict(self, row: Tensor) -> dict:
        """One model's weights under ``build_model``'s state-dict names (weights as (out, in))."""
        out = {}
        for i, (w, b) in enumerate(self.layers(row[None])):
            out[f"{2 * i}.weight"] = w[0].T.numpy().copy()
            out[f"{2 * i}.bias"] = b[0, 0].numpy().copy()
        return out


def train_population(specs: list[RunSpec], data: Dataset) -> list[RunResult]:
    """Train every spec (all of one shape, one optimizer kind) at once; results in spec order."""
    started = time.perf_counter()
    cfg = specs[0].config
    pop = Population(specs, data)
    dtype = pop.dtype
    X_train, y_train = torch.tensor(data.X_train, dtype=dtype), torch.tensor(data.y_train)
    X_val, y_val = torch.tensor(data.X_val, dtype=dtype), torch.tensor(data.y_val)

    optim_configs = list(dict.fromkeys(s.config.optim for s in specs))
    which = torch.tensor([optim_configs.index(s.config.optim) for s in specs])
    params = pop.params
    optimizer = build_batched_optimizer(optim_configs, which, params)
    grad = torch.empty_like(params)
    stopping = cfg.train.early_stopping
    tracker = BestTracker(stopping, params) if stopping else None

    n = len(X_train)
    batch_size = cfg.train.batch_size or n
    epochs = cfg.train.epochs
    k = len(specs)
    alive = torch.arange(k)  # which spec each row of the population is
    history = torch.full((epochs, k, len(HISTORY_COLUMNS)), float("nan"), dtype=torch.float64)
    results: dict[int, RunResult] = {}

    for epoch in range(1, epochs + 1):
        lrs = [lr_at(c, epoch, epochs) for c in optim_configs]

        # Leaf views of the layers: autograd's gradients land in them, the optimizer updates `params`.
        layers = [(w.detach().requires_grad_(), b.detach().requires_grad_()) for w, b in pop.layers(params)]
        leaves = [t for layer in layers for t in layer]
        if batch_size < n:
            order = torch.stack([torch.randperm(n, generator=g) for g in pop.generators])
        else:
            order = torch.arange(n).expand(len(alive), n)
        grad_norm = torch.zeros(len(alive), dtype=dtype)
        steps = 0
        for start in range(0, n, batch_size):
            batch = order[:, start : start + batch_size]
            logits = pop.forward(layers, X_train[batch])
            # The sum over models of each model's mean loss: its gradient is each model's own.
            loss = F.cross_entropy(logits.flatten(0, 1), y_train[batch].flatten(), reduction="sum") / batch.shape[1]
            grads = torch.autograd.grad(loss, leaves)
            torch.cat([g.flatten(1) for g in grads], dim=1, out=grad)
            grad_norm += torch.mul(grad, grad, out=optimizer.scratch2).sum(1).sqrt_()
            steps += 1
            with torch.no_grad():
                optimizer.step(params, grad, lrs)

        train_loss, train_acc = pop.evaluate(params, X_train, y_train)
        val_loss, val_acc = pop.evaluate(params, X_val, y_val)
        h = history[epoch - 1, alive]
        h[:, COLUMN["train_loss"]], h[:, COLUMN["val_loss"]] = train_loss, val_loss
        h[:, COLUMN["train_acc"]], h[:, COLUMN["val_acc"]] = train_acc, val_acc
        h[:, COLUMN["lr"]] = torch.tensor(lrs, dtype=torch.float64)[optimizer.which]
        h[:, COLUMN["grad_norm"]] = (grad_norm / steps).double()
        history[epoch - 1, alive] = h

        diverged = ~torch.isfinite(train_loss)
        stopped = tracker.update(epoch, h, params, ~diverged) if tracker else torch.zeros_like(diverged)
        done = diverged | stopped | (epoch == epochs)
        if done.any():
            rows = done.nonzero().flatten()
            status = ["diverged" if diverged[r] else "early_stopped" if stopped[r] else "ok" for r in rows.tolist()]
            finished = finish(pop, specs, data, history, alive[rows], rows, status, params, tracker, epoch)
            results.update(zip(alive[rows].tolist(), finished))
            keep = (~done).nonzero().flatten()
            alive, params, grad = alive[keep], params[keep], grad[keep]
            pop.generators = [pop.generators[i] for i in keep.tolist()]
            optimizer.keep(keep, params)
            if tracker:
                tracker.keep(keep)
        if len(alive) == 0:
            break

    seconds = (time.perf_counter() - started) / k
    for r in results.values():
        r.seconds = seconds
    return [results[i] for i in range(k)]


class BestTracker:
    """``callbacks.EarlyStopping`` for every model at once: best value, its epoch and weights."""

    def __init__(self, cfg, params: Tensor):
        self.cfg = cfg
        self.best = torch.full((len(params),), float("nan"), dtype=torch.float64)
        self.best_epoch = torch.zeros(len(params), dtype=torch.long)
        self.best_params = params.clone() if cfg.restore_best else None

    def update(self, epoch: int, record: Tensor, params: Tensor, active: Tensor) -> Tensor:
        """Record improvements of the active models; return which of them should stop."""
        value = record[:, COLUMN[self.cfg.monitor]]
        if self.cfg.monitor == "val_loss":
            better = value < self.best - self.cfg.min_delta
        else:
            better = value > self.best + self.cfg.min_delta
        improved = active & torch.isfinite(value) & ((self.best_epoch == 0) | better)
        self.best = torch.where(improved, value, self.best)
        self.best_epoch[improved] = epoch
        if self.best_params is not None:
            self.best_params[improved] = params[improved]
        return active & (epoch - self.best_epoch >= self.cfg.patience)

    def keep(self, rows: Tensor) -> None:
        self.best, self.best_epoch = self.best[rows], self.best_epoch[rows]
        if self.best_params is not None:
            self.best_params = self.best_params[rows]


def finish(pop: Population, specs: list[RunSpec], data: Dataset, history: Tensor, indices: Tensor,
           rows: Tensor, status: list[str], params: Tensor, tracker: BestTracker | None,
           epoch: int) -> list[RunResult]:
    """RunResults of the models in ``rows`` (spec ``indices``), which leave the population now."""
    final_params = params[rows].clone()
    final_epoch = [epoch] * len(rows)
    if tracker:
        best = [b or 1 for b in tracker.best_epoch[rows].tolist()]
        for j, r in enumerate(rows.tolist()):
            # as train.py: restore the best weights unless the model diverged (or never improved)
            if tracker.best_params is not None and status[j] != "diverged" and tracker.best_epoch[r] > 0:
                final_params[j] = tracker.best_params[r]
                final_epoch[j] = best[j]
    else:
        best = [best_epoch(history[:epoch, i, COLUMN["val_loss"]].tolist()) for i in indices.tolist()]
    test_acc = [None] * len(rows)
    if data.X_test is not None:
        X_test = torch.tensor(data.X_test, dtype=pop.dtype)
        test_acc = pop.evaluate(final_params, X_test, torch.tensor(data.y_test))[1].tolist()
    results = []
    for j, i in enumerate(indices.tolist()):
        h = history[:epoch, i].T.tolist()
        results.append(RunResult(
            spec=specs[i],
            history=dict(zip(HISTORY_COLUMNS, h)),
            status=status[j],
            best_epoch=best[j],
            final_epoch=final_epoch[j],
            test_acc=test_acc[j],
            params=pop.state_dict(final_params[j]),
        ))
    return results
