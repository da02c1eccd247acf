"""Epochs/s and updates/s of a playground training session, measured through a real WebSocket.

Starts `trainlab serve` on a free port (its own process, as a user runs it), trains a 2→32→2 ReLU
MLP on moons (600 points, 70/30 split, batch 64, SGD) while the page's updates stream, and prints
what arrived. Usage: .venv/bin/python benchmarks/web_stream.py [--epochs 3000]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time

from websockets.sync.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3000)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "trainlab", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ws = connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with ws:
            ws.send(json.dumps({"type": "setup", "seed": 0, "config": {
                "data": {"name": "moons", "n_samples": 600},
                "model": {"hidden": [32], "activation": "relu"},
                "optim": {"name": "sgd", "lr": 0.05},
                "train": {"epochs": args.epochs, "batch_size": 64}}}))
            ready = json.loads(ws.recv())
            assert ready["type"] == "ready", ready
            json.loads(ws.recv())  # epoch 0
            started = time.perf_counter()
            ws.send(json.dumps({"type": "play"}))
            updates, size = 0, 0
            while True:
                text = ws.recv()
                updates += 1
                size += len(text)
                m = json.loads(text)
                if m["status"] != "training":
                    break
            seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
    print(f"{m['epoch']} epochs of a {'→'.join(map(str, ready['sizes']))} MLP on moons (600 points, batch 64) "
          f"in {seconds:.2f} s while streaming:")
    print(f"  {m['epoch'] / seconds:,.0f} epochs/s, {updates / seconds:.1f} updates/s, "
          f"{size / updates / 1024:.1f} KiB per update; final train loss {m['history']['train_loss'][-1]:.4f}")


if __name__ == "__main__":
    main()
