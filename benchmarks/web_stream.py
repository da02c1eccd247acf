"""Epochs/s, steps/s, updates/s and pause latency of playground sessions, measured through a real WebSocket.

Starts `trainlab serve` on a free port (its own process, as a user runs it), and for each setting
plays a session for ``--seconds`` while acknowledging every update as the page does once it has
drawn it (``drawn``), then pauses and times the answer. The settings: the page's defaults (moons,
600 points, 2×8 tanh, Adam, batch 32), TensorFlow Playground's largest (spiral, 5,000 points, 6×8,
batch 10, and batch 1), and the playground's largest network (6×64). On Linux it also gives the
server's CPU seconds while it played (all its threads: training, describing, sending), as steps per
CPU second: a figure less swayed than steps/s by other work on the machine. "ready in": from a
session's setup to its first answer; the first session opens 2 s after the server listens, as a
person's would.
Usage: .venv/bin/python benchmarks/web_stream.py [--seconds 5] [--only "batch 1$"]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.sync.client import connect

DEFAULTS = {"data": {"name": "moons", "n_samples": 600, "noise": 0.25}, "model": {"hidden": [8, 8], "activation": "tanh"},
            "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": 10_000, "batch_size": 32}}
SPIRAL = {"data": {"name": "spiral", "n_samples": 5000}, "model": {"hidden": [8] * 6, "activation": "tanh"},
          "optim": {"name": "adam", "lr": 0.01}}
SETTINGS = {
    "defaults (moons 600, 2×8, batch 32)": DEFAULTS,
    "spiral 5,000 points, 6×8, batch 10": {**SPIRAL, "train": {"epochs": 10_000, "batch_size": 10}},
    "spiral 5,000 points, 6×8, batch 1": {**SPIRAL, "train": {"epochs": 10_000, "batch_size": 1}},
    "6×64 (moons 600, batch 32)": {**DEFAULTS, "model": {"hidden": [64] * 6, "activation": "tanh"}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (NaN where /proc does not tell)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def playground_server() -> Iterator[tuple[int, int]]:
    """``trainlab serve`` on a free port of this machine, once it listens: its port and process id."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "trainlab", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        time.sleep(2)  # as a person opening the page: the server has warmed up meanwhile (cli.serve)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(10)


def measure(port: int, pid: int, config: dict, seconds: float) -> dict:
    with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        asked = time.perf_counter()
        ws.send(json.dumps({"type": "setup", "seed": 0, "config": config}))
        ready = json.loads(ws.recv())
        ready_s = time.perf_counter() - asked
        assert ready["type"] == "ready", ready
        json.loads(ws.recv())  # epoch 0
        started, cpu_started = time.perf_counter(), cpu_seconds(pid)
        ws.send(json.dumps({"type": "play"}))
        updates, size, m = 0, 0, None
        while time.perf_counter() - started < seconds:
            text = ws.recv()
            m = json.loads(text)
            updates, size = updates + 1, size + len(text)
            ws.send('{"type":"drawn"}')
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_started
        asked = time.perf_counter()
        ws.send(json.dumps({"type": "pause"}))
        while (reply := json.loads(ws.recv()))["type"] != "paused":
            m = reply
        pause = time.perf_counter() - asked
    n_train = round(config["data"]["n_samples"] * 0.7)
    epochs = m["epoch"] + m["progress"]
    steps = epochs * math.ceil(n_train / config["train"]["batch_size"])
    return {"epochs_per_s": epochs / elapsed, "steps_per_s": steps / elapsed, "steps_per_cpu_s": steps / cpu,
            "updates_per_s": updates / elapsed, "kib": size / updates / 1024, "pause_ms": 1000 * pause,
            "ready_ms": 1000 * ready_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--only", default="", help="measure only the settings whose name matches this regular "
                        "expression (e.g. 'batch 1$')")
    args = parser.parse_args()
    with playground_server() as (port, pid):
        for name, config in SETTINGS.items():
            if not re.search(args.only, name):
                continue
            r = measure(port, pid, config, args.seconds)
            print(f"{name}: {r['epochs_per_s']:,.1f} epochs/s ({r['steps_per_s']:,.0f} steps/s, "
                  f"{r['steps_per_cpu_s']:,.0f} per CPU second), {r['updates_per_s']:.1f} updates/s, "
                  f"{r['kib']:.0f} KiB per update; paused in {r['pause_ms']:.0f} ms; ready in {r['ready_ms']:.0f} ms",
                  flush=True)


if __name__ == "__main__":
    main()
