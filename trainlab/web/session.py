"""One browser tab's training: the reference engine, trained in time slices, streamed over its WebSocket.

The tab sends ``setup`` (a playground request), then ``play``, ``pause``, ``step`` (to the end of the
epoch), ``reset`` (with the seed of the new initial weights), ``set_weight``, ``compare`` or
``compare_cancel``; it answers every ``update`` it has drawn with ``drawn``. The server answers
``ready`` (the data and the network's shape), then ``update`` messages: the epochs finished since
the last one and how far into the next it is, the model's output and neurons over the plane, its
weights, per-layer gradient norms and scores on the val split (``Views.scores``). While it plays,
the output map and the curves are new in every update, the val scores and the units' maps at most
every ``DETAIL_SECONDS`` (they cost as much again, and change slowly); an update when training
stops (pause, the end of a step, the end of the run) is exact throughout.

Training never runs on the event loop. A session's Training runs in a thread of its own, parked
between slices (``Stepper``: a long epoch is cut into slices between its minibatches), so the tab
gets an update 30 or more times a second however long an epoch is (a slice is ``FRAME_SECONDS``
less the time describing the update takes), a pause takes effect within a slice, and no more
updates are described than the tab has drawn (``WINDOW`` in flight).

Playing, stepping and comparing each hold one of the server's training ``Slots`` for as long as
they run, released once when they stop, whichever way they stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import torch
from starlette.websockets import WebSocket, WebSocketDisconnect

from trainlab.callbacks import Callback
from trainlab.data import Dataset
from trainlab.errors import BadInput
from trainlab.history import HISTORY_COLUMNS
from trainlab.models import layer_sizes, linear_layers
from trainlab.train import Training
from trainlab.web.compare import Cancelled, Comparison
from trainlab.web.limits import Limits, RequestRefused, Slot, Slots
from trainlab.web.requests import MAX_SEED, Request
from trainlab.web.views import Views, weights

FRAME_SECONDS = 1 / 40  # between updates: a slice of training, then describing it (sending takes the rest of 1/30 s)
DETAIL_SECONDS = 1 / 8  # between fresh val scores and unit maps while training plays
MIN_SLICE_SECONDS = 0.004
WINDOW = 2  # updates sent and not yet drawn by the tab
PROGRESS_SECONDS = 0.1  # between compare_progress messages


class TrainingFailed(Exception):
    """An error in a session's training thread, handed to whoever waits for the slice."""

    def __init__(self, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")


class Stopped(Exception):
    """The session was closed: unwinds its training thread out of the epoch it was in."""


class Stepper(Callback):
    """Runs ``trainer.epochs()`` in a thread of its own, a slice at a time.

    As a hook of the training loop, it parks the thread after a minibatch's optimizer step once
    the slice's time is up (and at the end of an epoch), until ``advance`` asks for the next slice.
    While it is parked the model is not touched, so it may be drawn or edited. This is the whole
    interface to ``trainlab.train``: a Training's ``hooks``, ``epochs()``, ``done``, ``history``,
    ``model`` and ``diagnostics``.
    """

    def __init__(self, trainer: Training):
        self.trainer = trainer
        trainer.hooks.append(self)
        n = len(self.trainer.X_train)
        self.batches_per_epoch = math.ceil(n / (self.trainer.cfg.train.batch_size or n))
        self.batches = 0  # minibatches of the current epoch trained
        self._cond = threading.Condition()
        self._deadline: float | None = None  # the running slice's end; None while parked
        self._to_epoch_end = False
        self._closed = False
        self._parked: Future | None = None  # resolved when the running slice parks
        self._then: Callable[[], Any] | None = None  # called in the thread when it parks
        self._thread: threading.Thread | None = None

    def advance(self, seconds: float, then: Callable[[], Any] = lambda: None, to_epoch_end: bool = False) -> Future:
        """Train for about ``seconds`` (or to the end of the epoch); the future is ``then()``,
        called in the training thread once it is parked again."""
        future: Future = Future()
        with self._cond:
            if self.finished or self._closed:
                future.set_result(then())
                return future
            self._deadline, self._to_epoch_end = time.perf_counter() + seconds, to_epoch_end
            self._parked, self._then = future, then
            if self._thread is None:
                self._thread = threading.Thread(target=self._train, name="trainlab-session", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return future

    @property
    def finished(self) -> bool:
        """The run is over (``trainer.done`` alone turns true as its last epoch starts)."""
        return self.trainer.done and len(self.trainer.history["train_loss"]) == self.trainer.epoch

    def close(self) -> None:
        """End the training thread and wait for it (call it while the thread is parked: it ends at once)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    # ---- in the training thread

    def _train(self) -> None:
        try:
            for _ in self.trainer.epochs():
                self.batches = 0
                self._park_if_due(epoch_end=True)
        except Stopped:
            pass
        except BaseException as e:  # noqa: BLE001  (handed to whoever waits for the slice)
            self._resolve(error=e)
            return
        self._resolve()

    def on_step_end(self, run: Training, step: int) -> None:
        self.batches += 1
        if self.batches < self.batches_per_epoch:  # after the last, it parks at the epoch's end
            self._park_if_due(epoch_end=False)

    def _park_if_due(self, epoch_end: bool) -> None:
        with self._cond:
            due = self._closed or time.perf_counter() >= self._deadline or (epoch_end and self._to_epoch_end)
        if not due or (epoch_end and self.trainer.done):
            return  # a finished run resolves the slice as the thread ends
        self._resolve()
        with self._cond:
            self._cond.wait_for(lambda: self._deadline is not None or self._closed)
            if self._closed:
                raise Stopped

    def _resolve(self, error: BaseException | None = None) -> None:
        with self._cond:
            future, then = self._parked, self._then
            self._deadline, self._parked, self._then = None, None, None
        if future is None or not future.set_running_or_notify_cancel():  # no one waits for it any more
            return
        try:
            future.set_result(then()) if error is None else future.set_exception(TrainingFailed(error))
        except BaseException as e:  # noqa: BLE001
            future.set_exception(TrainingFailed(e))


class Session:
    """A request's data and one Training of it, drawn for the page."""

    def __init__(self, request: Request, data: Dataset):
        self.request, self.data = request, data
        self.views = Views(data, max(request.config.model.hidden, default=0))
        self.stepper: Stepper | None = None
        self.reset(request.seed)

    def reset(self, seed: int) -> None:
        """New initial weights from ``seed``, at epoch 0."""
        if self.stepper is not None:
            self.stepper.close()
        self.request = dataclasses.replace(self.request, seed=seed)
        cfg = self.request.config
        self.stepper = Stepper(Training(cfg, seed, self.data, diagnostics=True))
        self.trainer = self.stepper.trainer
        self.sent = 0  # epochs already sent to the tab
        self.sent_batches = 0
        self.describe_seconds = 0.0  # the last update's
        self.detail: dict = {}  # the val scores and unit maps last described, and when
        self.detail_at = -math.inf
        self.stale = False  # the last update repeated them from an earlier model

    def close(self) -> None:
        self.stepper.close()

    @property
    def done(self) -> bool:
        return self.stepper.finished

    @property
    def epochs(self) -> int:
        """Epochs finished."""
        return len(self.trainer.history["train_loss"])

    @property
    def outdated(self) -> bool:
        """The tab's last update is not exactly the current model: it trained since, or the update
        repeated earlier val scores and unit maps."""
        return self.stale or (self.epochs, self.stepper.batches) != (self.sent, self.sent_batches)

    def advance(self, seconds: float, describe: bool, to_epoch_end: bool = False) -> Future:
        """A slice of training; its future is an update if ``describe``, else None. The update is
        exact if training stops there (the end of the run, or of the epoch a step trains)."""
        def update() -> dict:
            return self.update(exact=self.done or (to_epoch_end and self.stepper.batches == 0))

        return self.stepper.advance(seconds, update if describe else lambda: None, to_epoch_end)

    def ready(self) -> dict:
        cfg, data = self.request.config, self.data
        return {
            "type": "ready",
            "task": data.task,
            "n_classes": data.n_classes,
            "features": data.features,
            "sizes": layer_sizes(cfg.model, data.in_dim, data.n_classes),
            "epochs": cfg.train.epochs,
            "seed": self.request.seed,
            "extent": self.views.extent,
            "points": self.views.points(),
            "inputs": self.views.inputs(),
            "neuron_grid": self.views.neuron_grid,
            "target_scale": self.views.target_scale,
        }

    @property
    def slice_seconds(self) -> float:
        return max(MIN_SLICE_SECONDS, FRAME_SECONDS - self.describe_seconds)

    def update(self, exact: bool = True) -> dict:
        """What changed since the last update (call it while the training thread is parked); unless
        ``exact``, with the last val scores and unit maps if they are less than DETAIL_SECONDS old."""
        started = time.perf_counter()
        t, model = self.trainer, self.trainer.model
        fresh = exact or started - self.detail_at >= DETAIL_SECONDS
        output, neurons = self.views.maps(model, neurons=fresh)
        if fresh:
            self.detail, self.detail_at = {"scores": self.views.scores(model), "neurons": neurons}, started
        self.stale = not fresh
        new = slice(self.sent, self.epochs)
        self.sent, self.sent_batches = self.epochs, self.stepper.batches
        extra = t.diagnostics.extra
        grad_norms = [extra[f"grad_norm.{l}"][new] for l in range(1, len(t.diagnostics.weights) + 1)]
        update = {
            "type": "update",
            "epoch": self.epochs,
            "progress": round(self.stepper.batches / self.stepper.batches_per_epoch, 4),  # into the next epoch
            "seed": self.request.seed,
            "status": t.status if self.done else "training",
            "history": {c: [_json_float(v) for v in t.history[c][new]] for c in HISTORY_COLUMNS},
            "layer_grad_norms": [list(epoch) for epoch in zip(*grad_norms)],  # per epoch, per layer
            "output": output,
            **self.detail,
            "weights": weights(model),
        }
        self.describe_seconds = time.perf_counter() - started
        return update

    @torch.no_grad()
    def set_weight(self, layer: Any, source: Any, target: Any, value: Any) -> None:
        """Set the weight of the link from unit ``source`` of a layer to unit ``target`` of the next
        (``layer`` 0: from the inputs), as the page's link editor does."""
        layers = linear_layers(self.trainer.model)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (layer, source, target))
        if not ints or not 0 <= layer < len(layers):
            raise RequestRefused(f"set_weight: layer from 0 to {len(layers) - 1} and unit numbers expected")
        w = layers[layer].weight
        if not (0 <= target < w.shape[0] and 0 <= source < w.shape[1]):
            raise RequestRefused(f"set_weight: layer {layer} links units 0–{w.shape[1] - 1} to 0–{w.shape[0] - 1}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RequestRefused(f"set_weight: expected a finite number (got {value!r})")
        w[target, source] = value


def _json_float(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None  # JSON has no NaN or infinity


class Job:
    """A training, stepping or comparison task of a tab, holding a slot until it ends."""

    def __init__(self, kind: str, slot: Slot, work: Callable[[Job], Any]):
        self.kind, self.slot = kind, slot
        self.stopping = False
        self.cancelled = threading.Event()  # for work in other threads
        self.task = asyncio.create_task(self._run(work))

    async def _run(self, work) -> None:
        try:
            await work(self)
        finally:
            self.slot.release()

    async def stop(self) -> None:
        """Ask the job to stop at its next slice (a comparison: at its next epoch) and wait for it."""
        self.stopping = True
        self.cancelled.set()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return not self.task.done()


class Tab:
    """The protocol of one tab's WebSocket."""

    def __init__(self, ws: WebSocket, parse: Callable[[Any, bool], Request], make_data: Callable[[Request], Dataset],
                 slots: Slots, limits: Limits):
        self.ws, self.parse, self.make_data, self.slots, self.limits = ws, parse, make_data, slots, limits
        self.session: Session | None = None
        self.training: Job | None = None  # play or step
        self.comparing: Job | None = None
        self.credit = WINDOW
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict) -> None:
        async with self._send_lock:
            await self.ws.send_json(message)

    async def run(self) -> None:
        await self.ws.accept()
        try:
            while True:
                try:
                    message = await self.ws.receive_json()
                except (ValueError, KeyError):  # not JSON: end the session
                    return
                try:
                    await self.handle(message)
                except BadInput as e:
                    await self.error(e)
        except WebSocketDisconnect:
            return
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop everything this tab runs and free its slots (when it closes, or the server stops)."""
        for job in (self.training, self.comparing):
            if job is not None:
                await job.stop()
        if self.session is not None:
            await asyncio.to_thread(self.session.close)

    async def error(self, e: BadInput) -> None:
        status = e.status if isinstance(e, RequestRefused) else 422
        try:
            await self.send({"type": "error", "status": status, "message": str(e)})
        except (WebSocketDisconnect, RuntimeError):
            pass

    async def stop_training(self) -> bool:
        """Stop play or step; whether one was running."""
        job, self.training = self.training, None
        if job is None or not job.running:
            return False
        await job.stop()
        return True

    async def handle(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "drawn":
            self.credit = min(WINDOW, self.credit + 1)
        elif kind == "setup":
            await self.stop_training()
            request = self.parse(message, False)
            data = await asyncio.to_thread(self.make_data, request)
            session = await asyncio.to_thread(Session, request, data)
            if self.session is not None:
                await asyncio.to_thread(self.session.close)
            self.session = session
            self.credit = WINDOW
            await self.send(await asyncio.to_thread(session.ready))
            await self.send(await asyncio.to_thread(session.update))
        elif kind == "compare":
            request = self.parse(message, True)
            if self.comparing is not None:
                await self.comparing.stop()
            self.comparing = Job("compare", self.slots.acquire(), lambda job: self.compare(job, request))
        elif kind == "compare_cancel":
            if self.comparing is not None and self.comparing.running:
                await self.comparing.stop()
                await self.send({"type": "compare_cancelled"})
        elif kind not in ("play", "pause", "step", "reset", "set_weight"):
            raise RequestRefused(f"unknown message type {kind!r}")
        elif self.session is None:
            raise RequestRefused(f"{kind}: send 'setup' first")
        elif kind in ("play", "step"):
            running = self.training is not None and self.training.running
            if self.session.done or (running and (kind == "step" or self.training.kind == "play")):
                return
            await self.stop_training()  # a step becomes play
            self.training = Job(kind, self.slots.acquire(), lambda job: self.train(job, to_epoch_end=kind == "step"))
        elif kind == "pause":
            await self.stop_training()
            await self.send({"type": "paused", "epoch": self.session.epochs})
        elif kind == "reset":
            seed = message.get("seed", self.session.request.seed)
            if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
                raise RequestRefused(f"reset: seed: expected an integer from 0 to {MAX_SEED} (got {seed!r})")
            await self.stop_training()
            await asyncio.to_thread(self.session.reset, seed)
            await self.send({"type": "reset", "seed": seed})
            await self.send(await asyncio.to_thread(self.session.update))
        elif kind == "set_weight":
            was_playing = await self.stop_training()
            session = self.session
            await asyncio.to_thread(session.set_weight, *(message.get(k) for k in ("layer", "source", "target",
                                                                                   "value")))
            await self.send(await asyncio.to_thread(session.update))
            if was_playing and not session.done:
                self.training = Job("play", self.slots.acquire(), lambda job: self.train(job, to_epoch_end=False))

    async def train(self, job: Job, to_epoch_end: bool) -> None:
        """Slices of training until paused, finished, or (a step) at the end of the epoch; an update
        for each slice the tab has room to draw, and always one for the last."""
        session = self.session
        self.credit = WINDOW  # what was sent before was drawn, or will never be
        try:
            while not job.stopping and not session.done:
                describe = self.credit > 0
                update = await asyncio.wrap_future(session.advance(session.slice_seconds, describe, to_epoch_end))
                if update is not None:
                    self.credit -= 1
                    await self.send(update)
                if to_epoch_end and session.stepper.batches == 0:
                    break
            if session.outdated:
                await self.send(await asyncio.to_thread(session.update))
        except BadInput as e:
            await self.error(e)
        except TrainingFailed as e:  # a bug: say so, rather than seem to play on
            await self.error(RequestRefused(f"training stopped: {e}", status=500))

    async def compare(self, job: Job, request: Request) -> None:
        """Every setting over its seeds in a worker thread: progress after each epoch (at most every
        PROGRESS_SECONDS), each setting as it finishes; stopped when cancelled or over its time budget."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()
        last = [0.0]

        def progress(fraction: float) -> None:  # in the training threads
            now = time.monotonic()
            if now - last[0] >= PROGRESS_SECONDS:
                last[0] = now
                loop.call_soon_threadsafe(inbox.put_nowait, {"type": "compare_progress",
                                                             "done": round(min(fraction, 1.0), 4)})

        def drive(comparison: Comparison) -> None:  # in a worker thread
            try:
                for message in comparison.run():
                    loop.call_soon_threadsafe(inbox.put_nowait, message)
            except Cancelled:
                pass
            except BadInput as e:
                loop.call_soon_threadsafe(inbox.put_nowait, {"type": "error", "status": 422, "message": str(e)})
            finally:
                loop.call_soon_threadsafe(inbox.put_nowait, None)

        try:
            data = await asyncio.to_thread(self.make_data, request)
            comparison = await asyncio.to_thread(Comparison, request, data, job.cancelled, progress)
        except BadInput as e:
            return await self.error(e)
        await self.send({"type": "compare_start", "settings": comparison.labels, "seeds": comparison.seeds})
        worker = asyncio.ensure_future(asyncio.to_thread(drive, comparison))
        deadline = time.monotonic() + self.limits.max_compare_seconds
        try:
            while (message := await asyncio.wait_for(inbox.get(), max(0.0, deadline - time.monotonic()))) is not None:
                await self.send(message)
        except TimeoutError:
            job.cancelled.set()
            await self.error(RequestRefused(f"compare: stopped after {self.limits.max_compare_seconds:.0f} s, the "
                                            "playground's budget: fewer seeds, epochs, points or units", status=413))
        finally:
            job.cancelled.set()  # a no-op once it finished; else stop it at its next epoch
            await asyncio.gather(worker, return_exceptions=True)  # the slot is freed once it has stopped
