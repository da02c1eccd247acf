"""The playground's training sessions over the WebSocket: slots, cancelling, time slices, reset, link edits."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from trainlab.web import create_app
from trainlab.web.limits import Limits

BASE = "http://127.0.0.1:8765"
WS = "ws://127.0.0.1:8765/ws"
SMALL = {"config": {"data": {"name": "moons", "n_samples": 200}, "model": {"hidden": [8]},
                    "optim": {"name": "adam", "lr": 0.02}, "train": {"epochs": 30, "batch_size": 32}}, "seed": 3}
LONG = {**SMALL, "config": {**SMALL["config"], "train": {"epochs": 10_000, "batch_size": 32}}}
# One epoch is 3,500 steps of batch 1: seconds of training.
LONG_EPOCH = {"config": {"data": {"name": "spiral", "n_samples": 5000}, "model": {"hidden": [8] * 6},
                         "train": {"epochs": 100, "batch_size": 1}}, "seed": 0}
COMPARE = {**SMALL, "config": {**SMALL["config"], "train": {"epochs": 3000, "batch_size": 8}},
           "vary": {"model.activation": ["relu", "tanh"]}, "seeds": 2}


def app_with(**limits):
    app = create_app("127.0.0.1", 8765, Limits(**limits))
    return app, app.state.slots


def set_up(ws, body=SMALL) -> dict:
    ws.send_json({"type": "setup", **body})
    ready = ws.receive_json()
    assert ready["type"] == "ready", ready
    assert ws.receive_json()["epoch"] == 0
    return ready


def receive_until(ws, kind: str) -> list[dict]:
    messages = []
    while True:
        messages.append(ws.receive_json())
        if messages[-1]["type"] == kind:
            return messages


def receive_until_epoch(ws, epoch: int) -> list[dict]:
    """Updates (acknowledged as drawn) until the end of ``epoch``."""
    updates = []
    while not updates or (updates[-1]["epoch"], updates[-1]["progress"]) != (epoch, 0):
        updates.append(ws.receive_json())
        ws.send_json({"type": "drawn"})
    return updates


def wait_for(condition, seconds: float) -> float:
    """Seconds until ``condition()`` held; fails after ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.005)
    return time.monotonic() - start


def test_step_counts_against_the_training_limit():
    app, slots = app_with(max_trainings=1)
    with TestClient(app, base_url=BASE) as client:
        with client.websocket_connect(WS) as first, client.websocket_connect(WS) as second:
            set_up(first, LONG)
            set_up(second, LONG_EPOCH)
            first.send_json({"type": "play"})
            assert first.receive_json()["type"] == "update"
            second.send_json({"type": "step"})
            refused = second.receive_json()
            assert refused["type"] == "error" and refused["status"] == 429
            second.send_json({"type": "compare", **COMPARE})
            assert second.receive_json()["status"] == 429
            assert slots.used == 1


def test_slots_are_released_once_under_concurrent_play_step_compare_and_close():
    app, slots = app_with(max_trainings=3)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(slots.used)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with TestClient(app, base_url=BASE) as client:
            for round_ in range(3):
                sockets = [client.websocket_connect(WS) for _ in range(5)]
                opened = [s.__enter__() for s in sockets]
                for ws in opened:
                    set_up(ws, LONG_EPOCH if round_ == 1 else LONG)
                for i, ws in enumerate(opened):
                    # play, step, compare, a setup in the middle of play, and play twice
                    for message in ([{"type": "play"}], [{"type": "step"}], [{"type": "compare", **COMPARE}],
                                    [{"type": "play"}, {"type": "setup", **LONG}, {"type": "play"}],
                                    [{"type": "play"}, {"type": "play"}, {"type": "step"}])[i]:
                        ws.send_json(message)
                time.sleep(0.3)
                assert slots.used <= 3
                for ws, s in zip(opened, sockets):
                    s.__exit__(None, None, None)  # closed while training
                wait_for(lambda: slots.used == 0, 0.5)
    finally:
        stop.set()
        watcher.join()
    assert max(seen) == 3 and min(seen) == 0  # the limit filled up, never overflowed, never went negative


@pytest.mark.parametrize("kind", ["play", "compare"])
def test_closing_the_socket_stops_its_work_within_half_a_second(kind):
    app, slots = app_with()
    with TestClient(app, base_url=BASE) as client:
        with client.websocket_connect(WS) as ws:
            if kind == "play":
                set_up(ws, LONG_EPOCH)
                ws.send_json({"type": "play"})
                assert ws.receive_json()["type"] == "update"
            else:
                ws.send_json({"type": "compare", **COMPARE})
                assert ws.receive_json()["type"] == "compare_start"
                assert ws.receive_json()["type"] == "compare_progress"
            assert slots.used == 1
        assert wait_for(lambda: slots.used == 0, 0.5) < 0.5


def test_compare_can_be_cancelled_and_the_playground_plays_meanwhile():
    app, slots = app_with()
    with TestClient(app, base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, SMALL)
        ws.send_json({"type": "compare", **COMPARE})
        assert ws.receive_json()["type"] == "compare_start"
        ws.send_json({"type": "play"})  # the same tab trains while it compares
        messages = receive_until(ws, "update")
        assert all(m["type"] in ("compare_progress", "update") for m in messages)
        assert slots.used == 2
        started = time.monotonic()
        ws.send_json({"type": "compare_cancel"})
        receive_until(ws, "compare_cancelled")
        assert time.monotonic() - started < 0.5
        wait_for(lambda: slots.used == 0, 2)  # the short session finished too


def test_a_long_epoch_is_streamed_in_slices_and_pauses_at_once():
    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, LONG_EPOCH)
        started = time.monotonic()
        ws.send_json({"type": "play"})
        first = ws.receive_json()
        assert time.monotonic() - started < 0.3
        assert first["epoch"] == 0 and 0 < first["progress"] < 1  # part of the first epoch
        ws.send_json({"type": "drawn"})
        second = ws.receive_json()
        assert second["progress"] > first["progress"] or second["epoch"] > 0
        paused_at = time.monotonic()
        ws.send_json({"type": "pause"})
        receive_until(ws, "paused")
        assert time.monotonic() - paused_at < 0.2


def test_updates_wait_for_the_tab_to_draw_them():
    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, LONG)
        ws.send_json({"type": "play"})
        _, second = ws.receive_json(), ws.receive_json()
        time.sleep(0.4)  # trains on; the tab has drawn nothing: nothing more is sent
        ws.send_json({"type": "pause"})
        last, paused = ws.receive_json(), ws.receive_json()
        assert (last["type"], paused["type"]) == ("update", "paused")
        assert last["epoch"] > second["epoch"] + 10  # it kept training, and the last update has every epoch since
        assert len(last["history"]["train_loss"]) == last["epoch"] - second["epoch"]
        ws.send_json({"type": "play"})
        for _ in range(6):  # drawn: the next one comes
            assert ws.receive_json()["type"] == "update"
            ws.send_json({"type": "drawn"})
        ws.send_json({"type": "pause"})
        receive_until(ws, "paused")


def test_step_trains_to_the_end_of_the_epoch():
    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, SMALL)
        for expected in (1, 2):
            ws.send_json({"type": "step"})
            updates = [ws.receive_json()]
            while updates[-1]["progress"]:  # a slice ended inside the epoch
                updates.append(ws.receive_json())
            assert updates[-1]["epoch"] == expected
            assert sum(len(m["history"]["train_loss"]) for m in updates) == 1
        set_up(ws, LONG_EPOCH)  # a long epoch: slices, then its end
        ws.send_json({"type": "step"})
        updates = receive_until_epoch(ws, 1)
        assert len(updates) > 3 and all(0 < m["progress"] < 1 for m in updates[:-1])


def test_reset_draws_the_initial_weights_of_its_seed():
    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, SMALL)
        ws.send_json({"type": "step"})
        receive_until_epoch(ws, 1)
        weights = {}
        for seed in (3, 4, 3):
            ws.send_json({"type": "reset", "seed": seed})
            assert ws.receive_json() == {"type": "reset", "seed": seed}
            update = ws.receive_json()
            assert update["epoch"] == 0 and update["seed"] == seed
            weights.setdefault(seed, []).append(update["weights"])
        assert weights[3][0] == weights[3][1] != weights[4][0]
        ws.send_json({"type": "reset", "seed": -1})
        assert ws.receive_json()["status"] == 422


def test_a_link_edited_on_the_page_changes_the_model():
    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, SMALL)
        ws.send_json({"type": "set_weight", "layer": 1, "source": 7, "target": 0, "value": 2.5})
        update = ws.receive_json()
        layer = update["weights"][1]
        assert np.frombuffer(base64.b64decode(layer["w"]), "<f4").reshape(layer["shape"])[0, 7] == 2.5
        ws.send_json({"type": "step"})  # and trains on from there
        receive_until_epoch(ws, 1)
        for bad in ({"layer": 2, "source": 0, "target": 0, "value": 1}, {"layer": 0, "source": 2, "target": 0,
                    "value": 1}, {"layer": 0, "source": 0, "target": 0, "value": "x"}):
            ws.send_json({"type": "set_weight", **bad})
            m = ws.receive_json()
            assert m["type"] == "error" and m["status"] == 422 and "set_weight" in m["message"]


@pytest.mark.slow  # starting `trainlab serve` takes seconds
def test_sigterm_stops_the_server_within_two_seconds_and_removes_its_uploads(tmp_path):
    from websockets.sync.client import connect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "trainlab", "serve", "--port", str(port)],
                              env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path.cwd())},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 60)
        assert [p.name.startswith("trainlab-uploads-") for p in tmp_path.iterdir()] == [True]
        with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as playing, \
                connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as comparing:
            comparing.send(json.dumps({"type": "compare", **COMPARE}))
            assert json.loads(comparing.recv())["type"] == "compare_start"
            playing.send(json.dumps({"type": "setup", **LONG_EPOCH}))
            playing.recv(), playing.recv()
            playing.send(json.dumps({"type": "play"}))
            assert json.loads(playing.recv())["type"] == "update"
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(2)
            assert time.monotonic() - started < 2
    finally:
        server.kill()
        server.wait()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("trainlab-uploads-")]


def test_a_bad_setup_while_training_stops_it_once_and_keeps_the_socket():
    app, slots = app_with(max_trainings=1)
    with TestClient(app, base_url=BASE) as client, client.websocket_connect(WS) as ws:
        for _ in range(3):
            set_up(ws, LONG)
            ws.send_json({"type": "play"})
            assert ws.receive_json()["type"] == "update"
            ws.send_json({"type": "setup", "config": {"data": [1]}})
            error = receive_until(ws, "error")[-1]
            assert error["status"] == 422 and "config.data" in error["message"]
            assert slots.used == 0
        ws.send_json({"type": "play"})  # the session it had goes on
        assert ws.receive_json()["type"] == "update"
        assert slots.used == 1


def model_of(update: dict, request):
    """The model whose weights an update carries (sent as float32 bytes: the model's own dtype)."""
    from trainlab.models import build_model, linear_layers
    from trainlab.web.requests import make_data

    data = make_data(request, Limits())
    model = build_model(request.config.model, data.in_dim, data.n_classes)
    with torch.no_grad():
        for layer, sent in zip(linear_layers(model), update["weights"], strict=True):
            layer.weight.copy_(torch.tensor(np.frombuffer(base64.b64decode(sent["w"]), "<f4").reshape(sent["shape"])))
            layer.bias.copy_(torch.tensor(np.frombuffer(base64.b64decode(sent["b"]), "<f4")))
    return model, data


@pytest.mark.parametrize("body, stop", [(LONG_EPOCH, "pause"), (SMALL, "finish")])
def test_when_training_stops_the_page_shows_the_models_exact_scores_and_maps(body, stop):
    """While playing, the val scores and unit maps are refreshed less often than the output map; the
    update the page is left with when training stops (paused mid-epoch, or finished) is a fresh
    description of the model whose weights it carries."""
    from trainlab.web.requests import parse_request
    from trainlab.web.views import Views

    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as client, client.websocket_connect(WS) as ws:
        set_up(ws, body)
        ws.send_json({"type": "play"})
        messages = []
        while (stop == "finish" or len(messages) < 12) and (not messages or messages[-1]["status"] == "training"):
            messages.append(ws.receive_json())
            ws.send_json({"type": "drawn"})
        if stop == "pause":
            ws.send_json({"type": "pause"})
            messages += receive_until(ws, "paused")
    last = [m for m in messages if m["type"] == "update"][-1]
    assert last["status"] == ("training" if stop == "pause" else "ok") and 0 < last["progress"] + last["epoch"]
    request = parse_request(body, None, Limits())
    model, data = model_of(last, request)
    views = Views(data, max(request.config.model.hidden))
    output, neurons = views.maps(model)
    assert last["scores"] == views.scores(model)
    assert last["neurons"] == neurons and last["output"] == output
