"""One browser tab's training: the reference engine stepped an epoch at a time, streamed over its WebSocket.

The tab sends ``setup`` (a playground request), then ``play``, ``pause``, ``step`` (one epoch),
``reset`` or ``compare``; the server answers ``ready`` (the data and the network's shape), then
``update`` messages: the epochs trained since the last one, the model's output and neurons over
the plane, its weights and per-layer gradient norms. Training runs in a worker thread for about
``FRAME_SECONDS`` at a time, so the event loop stays free and the tab gets ~15 updates a second
however fast or slow the epochs are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from trainlab.data import Dataset
from trainlab.errors import BadInput
from trainlab.history import HISTORY_COLUMNS
from trainlab.models import layer_sizes
from trainlab.train import Training
from trainlab.web.compare import Comparison
from trainlab.web.limits import RequestRefused, Slots
from trainlab.web.requests import Request, make_data
from trainlab.web.views import Views, weights

FRAME_SECONDS = 1 / 15


class Session:
    def __init__(self, request: Request, data: Dataset):
        self.request, self.data = request, data
        self.views = Views(data)
        self.reset()

    def reset(self) -> None:
        self.training = Training(self.request.config, self.request.seed, self.data, diagnostics=True)
        self.epochs = self.training.epochs()  # the reference loop, stepped an epoch at a time
        self.sent = 0  # epochs already sent to the tab

    @property
    def done(self) -> bool:
        return self.training.done

    def advance(self, seconds: float) -> dict:
        """Train for about ``seconds`` (at least one epoch), then describe what changed."""
        end = time.perf_counter() + seconds
        for _ in self.epochs:
            if time.perf_counter() >= end:
                break
        return self.update()

    def ready(self) -> dict:
        cfg, data = self.request.config, self.data
        return {
            "type": "ready",
            "task": data.task,
            "n_classes": data.n_classes,
            "features": data.features,
            "sizes": layer_sizes(cfg.model, data.in_dim, data.n_classes),
            "epochs": cfg.train.epochs,
            "extent": self.views.extent,
            "points": self.views.points(),
            "inputs": self.views.inputs(),
            "target_scale": self.views.target_scale,
        }

    def update(self) -> dict:
        t, model = self.training, self.training.model
        new = slice(self.sent, t.epoch)
        self.sent = t.epoch
        extra = t.diagnostics.extra
        grad_norms = [extra[f"grad_norm.{l}"][new] for l in range(1, len(t.diagnostics.weights) + 1)]
        return {
            "type": "update",
            "epoch": t.epoch,
            "status": t.status if t.done else "training",
            "history": {c: [_json_float(v) for v in t.history[c][new]] for c in HISTORY_COLUMNS},
            "layer_grad_norms": [list(epoch) for epoch in zip(*grad_norms)],  # per epoch, per layer
            "output": self.views.output(model),
            "neurons": self.views.neurons(model),
            "weights": weights(model),
        }


def _json_float(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None  # JSON has no NaN or infinity


async def run_socket(ws: WebSocket, parse: Callable[[Any, bool], Request], slots: Slots) -> None:
    """The protocol of one tab, until it closes."""
    await ws.accept()
    inbox: asyncio.Queue = asyncio.Queue()

    async def read() -> None:
        try:
            while True:
                await inbox.put(await ws.receive_json())
        except (WebSocketDisconnect, ValueError, KeyError):  # closed, or not JSON: end the session
            await inbox.put(None)

    reader = asyncio.create_task(read())
    session: Session | None = None
    playing = False

    def stop_playing() -> None:
        nonlocal playing
        if playing:
            slots.release()
            playing = False

    try:
        while True:
            if playing:
                message = inbox.get_nowait() if not inbox.empty() else {}
            else:
                message = await inbox.get()
            if message is None:
                return
            if message:
                session, playing = await _handle(ws, message, session, playing, parse, slots)
            if playing:
                await ws.send_json(await asyncio.to_thread(session.advance, FRAME_SECONDS))
                if session.done:
                    stop_playing()
    except WebSocketDisconnect:
        return
    finally:
        stop_playing()
        reader.cancel()


async def _handle(ws: WebSocket, message: Any, session: Session | None, playing: bool,
                  parse: Callable[[Any, bool], Request], slots: Slots) -> tuple[Session | None, bool]:
    """Act on one message; returns the (possibly new) session and whether it is playing."""
    kind = message.get("type") if isinstance(message, dict) else None

    def stop_playing() -> bool:
        if playing:
            slots.release()
        return False

    try:
        if kind == "setup":
            playing = stop_playing()
            request = parse(message, False)
            data = await asyncio.to_thread(make_data, request)
            session = Session(request, data)
            await ws.send_json(session.ready())
            await ws.send_json(session.update())
        elif kind == "compare":
            playing = stop_playing()
            await _compare(ws, parse(message, True), slots)
        elif kind not in ("play", "pause", "step", "reset"):
            raise RequestRefused(f"unknown message type {kind!r}")
        elif session is None:
            raise RequestRefused(f"{kind}: send 'setup' first")
        elif kind == "play" and not playing and not session.done:
            slots.acquire()
            playing = True
        elif kind == "pause":
            playing = stop_playing()
            await ws.send_json({"type": "paused", "epoch": session.training.epoch})
        elif kind == "step" and not playing and not session.done:
            await ws.send_json(await asyncio.to_thread(session.advance, 0.0))
        elif kind == "reset":
            playing = stop_playing()
            session.reset()
            await ws.send_json({"type": "reset"})
            await ws.send_json(session.update())
    except BadInput as e:
        status = e.status if isinstance(e, RequestRefused) else 422
        await ws.send_json({"type": "error", "status": status, "message": str(e)})
    return session, playing


async def _compare(ws: WebSocket, request: Request, slots: Slots) -> None:
    """Train every setting over its seeds (population engine), sending each setting as it finishes."""
    slots.acquire()
    try:
        data = await asyncio.to_thread(make_data, request)
        results = Comparison(request, data)
        await ws.send_json({"type": "compare_start", "settings": results.labels, "seeds": results.seeds})
        while (message := await asyncio.to_thread(next, results, None)) is not None:
            await ws.send_json(message)
    finally:
        slots.release()
