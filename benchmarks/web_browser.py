"""The playground as a user sees it, in headless Chromium: epochs/s, updates/s drawn, frame time, pause latency.

Starts `trainlab serve` on a free port (its own process), opens the page at each setting, presses ▶
for ``--seconds``, then ⏸, and reports: epochs/s (steps/s for long epochs), updates drawn per second
(the page acknowledges each update it has drawn), the main thread's time per drawn frame (mean and
95th percentile), and the time from the click on ⏸ to the paused page and to the server's last update.
Usage: .venv/bin/python benchmarks/web_browser.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from playwright.sync_api import sync_playwright
from web_stream import playground_server  # benchmarks/, run as a script

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SETTINGS = {
    "default (moons 600, 2×8 tanh, batch 32; 10,000 epochs)": "train.epochs=10000",
    "spiral 5,000 points, 6×8, batch 10": 'data.name="spiral"&data.n_samples=5000&model.hidden=[8,8,8,8,8,8]'
                                           "&train.batch_size=10&train.epochs=10000",
    "spiral 5,000 points, 6×8, batch 1": 'data.name="spiral"&data.n_samples=5000&model.hidden=[8,8,8,8,8,8]'
                                          "&train.batch_size=1&train.epochs=10000",
    "6×64 (moons 600, batch 32)": "model.hidden=[64,64,64,64,64,64]&train.epochs=10000",
}
# Times each animation-frame callback: the page's drawing of an update happens in one.
FRAME_TIMER = """
window.__frames = [];
const raf = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (f) => raf((t) => { const s = performance.now(); f(t); window.__frames.push(performance.now() - s); });
"""


def measure(browser, url: str, seconds: float) -> dict:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.add_init_script(FRAME_TIMER)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    drawn, updates = [], []
    page.on("websocket", lambda ws: (
        ws.on("framesent", lambda f: drawn.append(time.perf_counter()) if '"drawn"' in f else None),
        ws.on("framereceived", lambda f: updates.append((time.perf_counter(), f)) if f.startswith('{"type":"update"')
              else None)))
    page.goto(url)
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output:')")
    page.wait_for_timeout(300)
    page.evaluate("window.__frames = []")
    drawn.clear()
    updates.clear()
    started = time.perf_counter()
    page.get_by_test_id("train").click()
    page.wait_for_timeout(seconds * 1000)
    frames = page.evaluate("window.__frames")
    n_drawn = len(drawn)
    clicked = time.perf_counter()
    page.get_by_test_id("pause").click()
    page.wait_for_function("!document.querySelector('[data-testid=train]').disabled")
    page_paused = time.perf_counter() - clicked
    page.wait_for_timeout(500)
    last_update = max(t for t, _ in updates)
    first = json.loads(updates[0][1])
    last = json.loads(updates[-1][1])
    epochs = last["epoch"] + last["progress"] - (first["epoch"] + first["progress"] - 0)
    elapsed = clicked - started
    page.close()
    busy = [f for f in frames if f > 0.5]  # frames that drew something
    return {
        "epochs_per_s": epochs / elapsed,
        "drawn_per_s": n_drawn / elapsed,
        "kib_per_update": statistics.mean(len(f) for _, f in updates) / 1024,
        "frame_ms_mean": statistics.mean(busy) if busy else 0.0,
        "frame_ms_p95": sorted(busy)[int(0.95 * (len(busy) - 1))] if busy else 0.0,
        "pause_page_ms": 1000 * page_paused,
        "pause_server_ms": 1000 * max(0.0, last_update - clicked),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    with playground_server() as (port, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, hash_ in SETTINGS.items():
            r = measure(browser, f"http://127.0.0.1:{port}/#{hash_}", args.seconds)
            print(f"{name}:\n  {r['epochs_per_s']:,.1f} epochs/s, {r['drawn_per_s']:.1f} updates/s drawn, "
                  f"{r['kib_per_update']:.0f} KiB per update; frame {r['frame_ms_mean']:.1f} ms "
                  f"(p95 {r['frame_ms_p95']:.1f}); pause shown in {r['pause_page_ms']:.0f} ms, last update "
                  f"{r['pause_server_ms']:.0f} ms after the click" + (f"; JS errors: {r['errors']}"
                                                                        if r["errors"] else ""), flush=True)
        browser.close()

if __name__ == "__main__":
    main()
