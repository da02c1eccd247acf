"""The training loop of ``train.py``, batched: K models of one shape trained in lockstep.

The population trains a slice of models at a time, each slice through all its epochs with its state
in a core's cache. In a slice each model is a row of an (S, P) parameter matrix (``net.py``); gradients
are derived by hand (in C, ``kernel.c``, or batched torch code), and the optimizer updates all rows at
once. A model that diverges or stops early leaves its slice at the end of that epoch.

Slices train side by side on threads, one per core (the C kernel runs without the GIL), and each
slice's runs are handed back as it finishes; the slices after each thread's first are sized to take
about SLICE_SECONDS, which bounds what an interrupted sweep loses.
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import numpy as np

import torch
from torch import Tensor

from trainlab import metrics
from trainlab.config import RunSpec
from trainlab.data import Dataset
from trainlab.history import HISTORY_COLUMNS, STATUSES, RunBatch, diverged as is_diverged, divergence_limit, improves
from trainlab.models import init_weights, layer_sizes
from trainlab.optim import lr_at
from trainlab.population.compiled import CompiledNet, DataOrders, compiled
from trainlab.population.net import Net, Workspace, argmax_classes, augmented_t
from trainlab.population.optim import BatchedOptimizer, build_batched_optimizer
from trainlab.train import DTYPES

COLUMN = {name: i for i, name in enumerate(HISTORY_COLUMNS)}
# evaluation writes the losses, then the accuracies, of the train and val splits: the first columns
assert HISTORY_COLUMNS[:4] == ("train_loss", "val_loss", "train_acc", "val_acc"), HISTORY_COLUMNS
# A torch slice holds as many models as make its widest training activation about SLICE_ELEMENTS
# elements (half a core's L2 in float32), twice that from BIG_POPULATION models (each op's Python
# overhead spread over more). The C kernel holds one model's activations at a time, so its slices go
# to C_SLICE_ELEMENTS: each step's Python, which holds the GIL, is spread over more models.
# Evaluation, ~10x wider, takes a slice's models a few at a time under EVAL_ELEMENTS.
SLICE_ELEMENTS = 1 << 18
BIG_POPULATION = 2048
C_SLICE_ELEMENTS = 1 << 20
EVAL_ELEMENTS = 1 << 18
# Each thread's first slice is sized by its multiply-adds (a backward pass counted as two) under
# FIRST_SLICE_WORK; the later ones, from how fast the first trained, to take about SLICE_SECONDS.
SLICE_SECONDS = 2.0
FIRST_SLICE_WORK = 5e9
# Slices train on several threads only when each epoch of a slice is at least this much work: below
# it the Python between the kernel's calls, which holds the GIL, is most of the time, and threads
# taking turns at the GIL are slower than one.
PARALLEL_EPOCH_WORK = 2e7


def slice_size(sizes: list[int], batch: int, population: int, in_c: bool) -> int:
    elements = C_SLICE_ELEMENTS if in_c else SLICE_ELEMENTS * (2 if population >= BIG_POPULATION else 1)
    return max(1, elements // (batch * max(sizes[1:])))


def model_work(sizes: list[int], epochs: int, n_train: int, n_eval: int) -> float:
    """Multiply-adds to train one model: per epoch a forward and backward pass over the training
    points and a forward pass over the evaluated ones."""
    per_point = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return epochs * (3 * n_train + n_eval) * per_point


def first_slices(k: int, sizes: list[int], batch: int, epochs: int, n_train: int, n_eval: int,
                 cores: int, in_c: bool) -> tuple[int, int, int, int]:
    """For a population of ``k``: the models of the first slices (FIRST_SLICE_WORK), of the smallest
    (an epoch of PARALLEL_EPOCH_WORK), of the largest (``slice_size``), and the threads to train
    them on: one per core when a slice's epochs are long enough to share."""
    work = model_work(sizes, epochs, n_train, n_eval)
    most = slice_size(sizes, batch, k, in_c)
    least = min(most, math.ceil(PARALLEL_EPOCH_WORK * epochs / work))
    first = min(most, max(least, int(FIRST_SLICE_WORK / (1 if in_c else 4) // work)))
    threads = cores if in_c and min(most, k) * work / epochs >= PARALLEL_EPOCH_WORK else 1
    return min(first, math.ceil(k / threads)), least, most, threads


class Slicer:
    """The population's ``k`` models, cut into slices as the threads ask for them. Each of the
    ``threads`` first trains a slice of ``first`` models; once one of those is timed, the rest is
    cut into equal slices, as many as make each take about SLICE_SECONDS (and have ``least`` to
    ``most`` models), a multiple of the threads, so that the threads finish together.
    ``adapt=False``: every slice has ``first`` models."""

    def __init__(self, k: int, first: int, least: int, most: int, threads: int, epochs: int, adapt: bool = True):
        self.k, self.least, self.most, self.threads, self.epochs = k, least, most, threads, epochs
        self.size, self.planned = first, not adapt
        self.start = 0
        self.lock = threading.Lock()

    def next(self) -> np.ndarray | None:
        with self.lock:
            index = np.arange(self.start, min(self.start + self.size, self.k))
            self.start += len(index)
            return index if len(index) else None

    def timed(self, seconds: float, model_epochs: int) -> None:
        """A slice took ``seconds`` to train ``model_epochs`` (its models' epochs, early leavers' fewer)."""
        with self.lock:
            if self.planned or model_epochs == 0:
                return
            self.planned = True
            size = min(max(int(SLICE_SECONDS * model_epochs / (seconds * self.epochs)), self.least), self.most)
            left = self.k - self.start
            slices = math.ceil(math.ceil(left / size) / self.threads) * self.threads
            self.size = math.ceil(left / slices) if left else size


def train_population(specs: list[RunSpec], data: Dataset, slice_models: int | None = None,
                     workers: int | None = None) -> RunBatch:
    """Train every spec (all of one shape, one optimizer kind) at once; results in spec order."""
    batch = None
    for batch, _ in train_in_slices(specs, data, slice_models, workers):
        pass
    return batch


def train_in_slices(specs: list[RunSpec], data: Dataset, slice_models: int | None = None,
                    workers: int | None = None, progress: Callable[[float], None] | None = None,
                    controller: Controller | None = None) -> Iterator[tuple[RunBatch, np.ndarray]]:
    """Train every spec (all of one shape, one optimizer kind); each time a slice finishes, yield
    the population's results (a RunBatch in spec order) and the indices of the runs it finished.

    ``workers`` threads (default: the cores, where the work is in C, see ``first_slices``) train
    slices side by side. ``progress(runs)`` after each epoch of a slice, with the runs it advanced.
    Closing the generator early (an error, Ctrl-C) stops the slices in training at their next epoch.
    ``controller`` (a search's) is asked after every epoch of every slice: give it the whole
    population as one slice (``slice_models=len(specs)``) for it to compare them all.
    """
    cfg = specs[0].config
    dtype = DTYPES[cfg.train.dtype]
    net = Net(layer_sizes(cfg.model, data.in_dim, data.n_classes), cfg.model.activations, dtype, cfg.model.dropouts)
    k, epochs = len(specs), cfg.train.epochs
    n = len(data.X_train)
    batch_size = min(cfg.train.batch_size or n, n)
    setup = Setup(net, data, batch_size)
    cores = workers or torch.get_num_threads()
    history = np.full((k, epochs, len(HISTORY_COLUMNS)), np.nan)
    params = np.zeros((k, net.n_params), np.float64 if dtype == torch.float64 else np.float32)
    batch = RunBatch(specs, history, params, net.state_dict, has_test=data.X_test is not None)
    if slice_models:
        threads = min(cores if setup.kernel else 1, math.ceil(k / slice_models))
        slicer = Slicer(k, slice_models, slice_models, slice_models, threads, epochs, adapt=False)
    else:
        first, least, most, threads = first_slices(k, net.sizes, batch_size, epochs, n, n + len(data.X_val), cores,
                                                   in_c=setup.kernel is not None)
        slicer = Slicer(k, first, least, most, threads, epochs)
    stop = threading.Event()
    finished: queue.SimpleQueue = queue.SimpleQueue()  # a slice's indices, or a thread's ended Future

    def train_slices() -> None:
        """One thread's work: the next slice, until none is left."""
        while not stop.is_set() and (index := slicer.next()) is not None:
            started = time.perf_counter()
            train_slice(setup, [specs[i] for i in index], torch.from_numpy(index), batch, torch.from_numpy(history),
                        torch.from_numpy(params), stop, progress and (lambda models: progress(models / epochs)),
                        controller)
            seconds = time.perf_counter() - started
            batch.seconds[index] = seconds / len(index)
            slicer.timed(seconds, int(batch.epochs_run[index].sum()))
            finished.put(index)

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per slice: these ops are too small to share
    pool = ThreadPoolExecutor(threads, thread_name_prefix="trainlab-slice")
    try:
        for future in [pool.submit(train_slices) for _ in range(threads)]:
            future.add_done_callback(finished.put)
        running = threads
        while running:
            item = finished.get()
            if isinstance(item, Future):
                item.result()  # a thread's error is raised here
                running -= 1
            else:
                yield batch, item
    finally:
        stop.set()
        pool.shutdown(wait=True)
        torch.set_num_threads(torch_threads)


class Setup:
    """What every slice of a population shares: the net, the data as tensors, the C kernel (each
    slice trains with a copy with scratch buffers of its own, ``own_buffers``)."""

    def __init__(self, net: Net, data: Dataset, batch_size: int):
        dtype = net.dtype
        self.net, self.batch_size = net, batch_size
        X_train, y_train = torch.tensor(data.X_train, dtype=dtype), torch.tensor(data.y_train)
        X_val, y_val = torch.tensor(data.X_val, dtype=dtype), torch.tensor(data.y_val)
        self.n, self.n_val, self.in_dim, self.n_classes = len(X_train), len(X_val), data.in_dim, data.n_classes
        # One row per training point: its inputs, a one (for the bias), its one-hot label. A
        # model's minibatches are rows of this table in its own order: one gather per epoch.
        onehot = torch.nn.functional.one_hot(y_train, data.n_classes).to(dtype)
        self.table = torch.cat([X_train, torch.ones(self.n, 1, dtype=dtype), onehot], dim=1)
        # Evaluation inputs: train and val side by side, one forward pass for both.
        self.eval_x = augmented_t(torch.cat([X_train, X_val]))
        self.eval_y = torch.cat([y_train, y_val])
        # The splits a finished model's metrics are computed on: inputs (in + 1, N) and labels.
        self.scored = {"val": (augmented_t(X_val), data.y_val)}
        self.test = None
        if data.X_test is not None:
            X_test = torch.tensor(data.X_test, dtype=dtype)
            self.test = (augmented_t(X_test), torch.tensor(data.y_test))
            self.scored["test"] = (self.test[0], data.y_test)
        self.kernel = compiled(net)  # the library; each slice gets its CompiledNet from own_buffers

    def own_buffers(self) -> Setup:
        """Scratch buffers and views of its own for a slice's copy (``copy.copy(setup).own_buffers()``)."""
        self.net = copy.copy(self.net)  # without the views it cached (Net.__getstate__)
        self.ws = Workspace(self.net.dtype)
        self.compiled = self.kernel and CompiledNet(self.net, self.kernel.lib)
        return self

    def train_epoch(self, params: Tensor, order: Tensor | None, grad: Tensor, norms: Tensor, seeds: Tensor,
                    epoch: int, optimizer: BatchedOptimizer, lrs: list[float]) -> int:
        """An epoch's steps, each a ``train_step`` on every model's next rows of ``order`` (K, n)
        (None: the whole table); with Adam in the kernel, all in one call. Returns the number of steps."""
        starts = range(0, self.n, self.batch_size)
        adam = optimizer.kernel_steps(lrs, len(starts)) if self.compiled else None
        if adam is not None:  # Adam in the kernel: the whole epoch in one call
            self.compiled.gradients(params, self.table, order, self.batch_size, grad, seeds, epoch, 0, norms, adam)
            return len(starts)
        for step, start in enumerate(starts):
            rows = None if order is None else order[:, start : start + self.batch_size]
            self.train_step(params, rows, grad, norms, seeds, epoch, step, optimizer, lrs)
        return len(starts)

    def train_step(self, params: Tensor, rows: Tensor | None, grad: Tensor, norms: Tensor, seeds: Tensor, epoch: int,
                   step: int, optimizer: BatchedOptimizer, lrs: list[float]) -> None:
        """Each model's gradient on its table rows ``rows`` (K, m) (None: all) into ``grad``, its norm
        summed over the epoch in ``norms``, then the optimizer's step: minibatch ``step`` of ``epoch``."""
        m = self.n if rows is None else rows.shape[1]
        if self.compiled:
            self.compiled.gradients(params, self.table, rows, m, grad, seeds, epoch, step, norms)
            optimizer.step(params, grad, lrs)
            return
        masks = self.net.dropout_masks(seeds.tolist(), epoch, step, m, batch_major=self.net.first_transposed)
        k, cols = len(params), self.table.shape[1]
        if rows is None:
            part = self.table.expand(k, self.n, cols)
        else:  # one gather for all models
            part = self.ws.get("rows", k, rows.shape[1], cols)
            torch.index_select(self.table, 0, rows.reshape(-1), out=self.ws.get("rows", k * rows.shape[1], cols))
        xa, onehot = self.inputs(part)
        self.net.gradients(params, xa, onehot, self.ws, out=grad, masks=masks)
        if step == 0:
            torch.linalg.vector_norm(grad, dim=1, out=norms)
        else:
            norms += torch.linalg.vector_norm(grad, dim=1)
        optimizer.step(params, grad, lrs)

    def inputs(self, part: Tensor) -> tuple[Tensor, Tensor]:
        """(inputs (K, in + 1, m), one-hot labels (K, classes, m)): views of table rows (K, m, cols)."""
        views = self.ws.derivations.get((id(part), "inputs"))
        if views is None or views[0] is not part:
            xa = part[:, :, : self.in_dim + 1].transpose(1, 2)
            onehot = part[:, :, self.in_dim + 1 :].transpose(1, 2)
            views = self.ws.derivations[id(part), "inputs"] = (part, (xa, onehot))
        return views[1]

    def evaluate(self, params: Tensor, x: Tensor, y: Tensor, splits: list[int], out: Tensor | None = None
                 ) -> list[tuple[Tensor, Tensor]]:
        if self.compiled:
            return self.compiled.evaluate(params, x, y, splits, out)
        return self.net.evaluate(params, x, y, splits, self.ws, EVAL_ELEMENTS, out)

    def train_val(self, params: Tensor, out: Tensor) -> None:
        """Train loss, val loss, train accuracy, val accuracy (the history's first columns) into ``out``."""
        self.evaluate(params, self.eval_x, self.eval_y, [self.n, self.n_val], out)

    def test_acc(self, params: Tensor) -> Tensor:
        x, y = self.test
        return self.evaluate(params, x, y, [len(y)])[0][1]

    @torch.no_grad()
    def predictions(self, params: Tensor, x: Tensor) -> np.ndarray:
        """Each model's predicted classes (K, N) for the inputs ``x`` (in + 1, N), as ``train.predict``."""
        ws, n = Workspace(self.net.dtype), x.shape[1]
        step = max(1, EVAL_ELEMENTS // (n * max(self.net.sizes[1:])))
        return np.concatenate([
            argmax_classes(self.net.forward(part, x.expand(len(part), *x.shape), ws)).numpy()
            for part in params.split(step)])

    def run_metrics(self, params: Tensor) -> list[metrics.RunMetrics]:
        """Each model's ``trainlab.metrics`` on the val (and test) split."""
        return metrics.of_predictions("classification", self.n_classes,
                                      {split: (y, self.predictions(params, x)) for split, (x, y) in self.scored.items()})


def init_params(net: Net, specs: list[RunSpec]) -> Tensor:
    """Each model's initial weights drawn from its own generator, as ``build_model`` draws them."""
    k, dtype = len(specs), net.dtype
    ws = [torch.empty(k, b, a, dtype=dtype) for a, b in zip(net.sizes[:-1], net.sizes[1:])]
    bs = [torch.empty(k, b, dtype=dtype) for b in net.sizes[1:]]
    for i, spec in enumerate(specs):
        # The same generator as the reference engine draws its init from.
        g = torch.Generator().manual_seed(spec.seed)
        for w, b in zip(ws, bs):
            init_weights(w[i], b[i], spec.config.model, g)  # rows of contiguous stacks: contiguous
    params = torch.empty(k, net.n_params, dtype=dtype)
    for layer, (w, b) in enumerate(zip(ws, bs)):
        net.weight(params, layer).copy_(w)
        net.bias(params, layer).copy_(b[:, :, None])
    return params


class Controller(Protocol):
    """What a search does between epochs (``search.Halving``, ``search.PopulationBasedTraining``)."""

    def after_epoch(self, epoch: int, rows: Tensor, record: Tensor, params: Tensor, optimizer: BatchedOptimizer,
                    active: Tensor) -> Tensor | None:
        """After ``epoch`` (not the last): the models still training are ``rows`` of the population
        (``record``: their history row of this epoch, ``params`` and ``optimizer`` their state, which
        it may change); ``active`` says which of them go on. Returns which of them to prune, if any."""


def train_slice(setup: Setup, specs: list[RunSpec], index: Tensor, out: RunBatch, history: Tensor,
                final_params: Tensor, stop: threading.Event | None = None,
                progress: Callable[[int], None] | None = None, controller: Controller | None = None) -> None:
    """Train ``specs`` (rows ``index`` of the population) through all their epochs into ``out``;
    ``stop`` set, it returns at the next epoch. ``progress(models)`` after each epoch (a model leaving
    early adds its untrained epochs)."""
    setup = copy.copy(setup).own_buffers()
    net = setup.net
    cfg = specs[0].config
    params = init_params(net, specs)
    optim_configs = list(dict.fromkeys(s.config.optim for s in specs))
    which = torch.tensor([optim_configs.index(s.config.optim) for s in specs])
    optimizer = build_batched_optimizer(optim_configs, which, params)
    grad = torch.empty_like(params)
    stopping = cfg.train.early_stopping
    tracker = BestTracker(stopping, params) if stopping else None

    n, batch_size, epochs = setup.n, setup.batch_size, cfg.train.epochs
    rows = index  # each model's row in the population (and its history) while it trains
    order = torch.empty(len(specs), n, dtype=torch.long)
    orders = DataOrders([s.seed for s in specs], n, setup.kernel.lib if setup.kernel else None)
    records = torch.empty(len(specs), len(HISTORY_COLUMNS), dtype=torch.float64)  # an epoch's history rows
    lr_of_rows = None  # the lr column, kept while lrs and rows are unchanged
    grad_norm = torch.empty(len(specs), dtype=net.dtype)  # each model's, summed over an epoch's steps
    setup.train_val(params, out=records[:, : COLUMN["lr"]])
    limit = torch.tensor([divergence_limit(loss) for loss in records[:, COLUMN["train_loss"]].tolist()],
                         dtype=torch.float64)

    for epoch in range(1, epochs + 1):
        if stop is not None and stop.is_set():
            return
        k = len(rows)
        record = records[:k]
        lrs = [lr_at(c, epoch, epochs) for c in optimizer.configs]  # a controller may add configs
        shuffle = batch_size < n
        if shuffle:
            orders.draw(epoch, order[:k])
        steps = setup.train_epoch(params, order[:k] if shuffle else None, grad, grad_norm[:k], orders.seeds, epoch,
                                  optimizer, lrs)

        setup.train_val(params, out=record[:, : COLUMN["lr"]])
        if lr_of_rows != (lrs, k):
            record[:, COLUMN["lr"]] = torch.tensor(lrs, dtype=torch.float64)[optimizer.which]
            lr_of_rows = (lrs, k)
        torch.div(grad_norm[:k], steps, out=record[:, COLUMN["grad_norm"]])  # in the net's dtype, then float64
        history[rows, epoch - 1] = record
        if progress:
            progress(k)

        diverged = is_diverged(record[:, COLUMN["train_loss"]], limit)
        stopped = tracker.update(epoch, record, params, ~diverged) if tracker else None
        done = diverged if stopped is None else diverged | stopped
        pruned = controller.after_epoch(epoch, rows, record, params, optimizer, ~done) \
            if controller and epoch < epochs else None
        done = done if pruned is None else done | pruned
        if epoch == epochs or done.any():
            done = torch.ones_like(done) if epoch == epochs else done
            leaving = done.nonzero().flatten()
            status = torch.full(done.shape, STATUSES.index("ok"))
            for flags, name in ((pruned, "pruned"), (stopped, "early_stopped"), (diverged, "diverged")):  # the last wins
                if flags is not None:
                    status[flags] = STATUSES.index(name)
            finish(setup, out, history, rows[leaving], leaving, status[leaving], params, tracker, epoch,
                   final_params)
            if progress and epoch < epochs:  # the epochs they leave untrained count as done
                progress(len(leaving) * (epochs - epoch))
            keep = (~done).nonzero().flatten()
            rows, params, grad = rows[keep], params[keep], grad[keep]
            limit = limit[keep]
            orders.keep(keep)
            optimizer.keep(keep, params)
            if tracker:
                tracker.keep(keep)
        if len(rows) == 0:
            break


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
        improved = active & improves(value, self.best, self.cfg.monitor, self.cfg.min_delta)
        self.best = torch.where(improved, value, self.best)
        self.best_epoch[improved] = epoch
        if self.best_params is not None:
            self.best_params[improved] = params[improved]
        return active & (epoch - self.best_epoch >= self.cfg.patience)

    def keep(self, rows: Tensor) -> None:
        self.best, self.best_epoch = self.best[rows], self.best_epoch[rows]
        if self.best_params is not None:
            self.best_params = self.best_params[rows]


def finish(setup: Setup, out: RunBatch, history: Tensor, index: Tensor, rows: Tensor, status: Tensor,
           params: Tensor, tracker: BestTracker | None, epoch: int, final_params: Tensor) -> None:
    """Record the models in ``rows`` of the slice (``index`` in the population), which leave it now."""
    final = params[rows].clone()
    final_epoch = torch.full((len(rows),), epoch)
    diverged = status == STATUSES.index("diverged")
    if tracker:
        best_at = tracker.best_epoch[rows]
        best = best_at.clamp(min=1)
        if tracker.best_params is not None:
            # as train.py: restore the best weights unless the model diverged (or never improved)
            restore = ~diverged & (best_at > 0)
            final[restore] = tracker.best_params[rows[restore]]
            final_epoch = torch.where(restore, best, final_epoch)
    else:
        # the first epoch with the lowest finite val_loss (history.best_epoch with min_delta 0)
        val = history[index, :epoch, COLUMN["val_loss"]]
        best = torch.where(torch.isfinite(val), val, torch.inf).argmin(dim=1) + 1
    final_params[index] = final
    index = index.numpy()
    out.status[index] = status.numpy()
    out.epochs_run[index] = epoch
    out.best_epoch[index] = best.numpy()
    out.final_epoch[index] = final_epoch.numpy()
    if setup.test is not None:
        out.test_acc[index] = setup.test_acc(final).numpy()
    for i, run_metrics in zip(index.tolist(), setup.run_metrics(final)):
        out.metrics[i] = run_metrics

