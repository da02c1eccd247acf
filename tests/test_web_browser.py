"""The playground in a real headless Chromium: train, watch the boundary change, compare, no JS errors."""

from __future__ import annotations

import os
import socket
import threading
import time
import tomllib
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (make test installs it: apt-get install chromium)",
                allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from trainlab.web import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app("127.0.0.1", port), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def open_page(browser, url: str, width: int = 1600, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(url)
    page.wait_for_function("document.getElementById('metrics').textContent.includes('Press')")
    return page, errors


def epoch(page) -> int:
    return int(page.get_by_test_id("epoch").inner_text())


def test_train_watch_the_boundary_change_then_compare(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page, errors = open_page(browser, server + "/#model.hidden=[8,8]&train.epochs=2000")
    page.wait_for_function("document.getElementById('output-title').textContent === 'Output: P(class 1)'")  # epoch 0 drawn
    before = page.eval_on_selector("[data-testid=boundary]", "c => c.toDataURL()")

    page.get_by_test_id("train").click()
    page.wait_for_function("Number(document.querySelector('[data-testid=epoch]').textContent) > 100",
                           timeout=60_000)
    page.get_by_test_id("pause").click()
    page.wait_for_function("!document.querySelector('[data-testid=train]').disabled")
    stopped = None
    while stopped != epoch(page):  # the page shows the pause at once; an update already sent may still land
        stopped = epoch(page)
        page.wait_for_timeout(300)
    assert stopped > 100
    after = page.eval_on_selector("[data-testid=boundary]", "c => c.toDataURL()")
    assert after != before, "the decision boundary did not change while training"
    cells = page.eval_on_selector_all("[data-testid=confusion] td", "tds => tds.map(td => Number(td.textContent))")
    assert len(cells) == 4 and sum(cells) == 180  # the 180 val points, by true and predicted class
    assert "Val macro F1" in page.text_content("#metrics")
    page.get_by_test_id("step").click()
    page.wait_for_function(f"Number(document.querySelector('[data-testid=epoch]').textContent) === {stopped + 1}")
    page.screenshot(path=str(ARTIFACTS / "playground.png"))

    page.hover("#net .node:not(.input):not(.output)")  # a hidden neuron: the big plot shows it
    assert page.text_content("#output-title") == "Layer 1, neuron 1"

    page.get_by_test_id("reset").click()
    page.wait_for_function("document.querySelector('[data-testid=epoch]').textContent === '0'")

    page.fill("[data-key='train.epochs']", "200")  # a quick comparison
    page.dispatch_event("[data-key='train.epochs']", "change")
    page.get_by_test_id("mode-compare").click()
    page.get_by_role("button", name="sigmoid vs relu").click()
    page.wait_for_function("document.querySelectorAll('.card canvas.thumb').length === 2", timeout=120_000)
    cards = page.inner_text("[data-testid=compare-results]")
    assert "activation=sigmoid" in cards and "activation=relu" in cards and "population" in cards
    assert "mode=compare" in page.url  # the mode is part of the shareable state
    page.screenshot(path=str(ARTIFACTS / "compare.png"))
    assert errors == []
    page.close()


@pytest.mark.parametrize("width", [1280, 1600])
def test_layout_fits_common_widths(server, browser, width):
    page, errors = open_page(browser, server + "/#data.name=\"circles\"&data.features=[\"x1\",\"x2\",\"x1^2\"]",
                             width=width, height=900)
    page.wait_for_function("document.querySelectorAll('#net .node').length > 10")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways at {width}px"
    assert page.locator(".chip.on").count() == 3  # the features came from the link
    page.screenshot(path=str(ARTIFACTS / f"playground-{width}.png"), full_page=True)
    assert errors == []
    page.close()


def test_link_of_a_csv_regression_setup_opens_on_generated_regression_data(server, browser):
    # An upload stays on its machine, so the link of a CSV regression setup carries the task but no data name.
    page, errors = open_page(browser, server + "/#data.task=\"regression\"&data.noise=0.05")
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output')")
    assert page.is_hidden("#error"), page.text_content("#error")
    assert page.input_value("[data-key='data.name']") == "plane"
    assert errors == []
    page.close()


def test_a_6x64_network_pauses_within_half_a_second(server, browser):
    page, errors = open_page(browser, server + "/#model.hidden=[64,64,64,64,64,64]&train.epochs=10000")
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output:')")
    page.get_by_test_id("train").click()
    page.wait_for_function("Number(document.querySelector('[data-testid=epoch]').textContent) > 5", timeout=60_000)
    # From the click (the input event's time stamp) to the first frame painted after it
    page.evaluate("""() => document.querySelector('[data-testid=pause]').addEventListener('click', (e) =>
        requestAnimationFrame(() => setTimeout(() => { window.pauseShownMs = performance.now() - e.timeStamp; })),
        { capture: true })""")
    box = page.get_by_test_id("pause").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # as a user: no waiting for it
    page.wait_for_function("window.pauseShownMs !== undefined", timeout=5_000)
    assert page.evaluate("window.pauseShownMs") < 500
    assert page.is_enabled("[data-testid=train]") and page.is_disabled("[data-testid=pause]")
    page.wait_for_timeout(400)  # the server's last update has come
    stopped = epoch(page)
    page.wait_for_timeout(600)
    assert epoch(page) == stopped, "training went on after the pause"
    page.screenshot(path=str(ARTIFACTS / "playground-6x64.png"))
    assert errors == []
    page.close()


def test_links_show_their_weight_and_a_click_edits_it(server, browser):
    page, errors = open_page(browser, server + "/#model.hidden=[3]")
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output:')")
    # the middle of the link from x1 to the first hidden unit, where the curve crosses its midpoint
    x, y = page.evaluate("""() => {
        const link = net.links[0][0], r = document.getElementById('links').getBoundingClientRect();
        return [r.left + (link.x0 + link.x1) / 2, r.top + (link.y0 + link.y1) / 2];
    }""")
    page.mouse.move(x, y)
    tip = page.locator("#link-tip")
    tip.wait_for(state="visible")
    weight = float(tip.inner_text().rsplit(" ", 1)[1])
    assert tip.inner_text().startswith("x1 → L1 #1: weight")
    assert weight == pytest.approx(page.evaluate("last.W[0].w[0]"), abs=1e-4)
    page.mouse.click(x, y)
    page.fill("#link-editor input", "1.5")
    page.press("#link-editor input", "Enter")
    page.wait_for_function("last.W[0].w[0] === 1.5")
    assert errors == []
    page.close()


def test_reset_advances_the_seed_and_the_link_reproduces_it(server, browser):
    page, errors = open_page(browser, server + "/#seed=7")
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output:')")
    first = page.evaluate("Array.from(last.W[0].w)")
    page.get_by_test_id("reset").click()
    page.wait_for_function("last.seed === 8")
    assert page.input_value("#seed") == "8" and "seed=8" in page.url
    assert page.evaluate("Array.from(last.W[0].w)") != first  # new initial weights
    again, _ = open_page(browser, page.url)  # the shared link: the same weights
    again.wait_for_function("last && last.seed === 8")
    assert again.evaluate("Array.from(last.W[0].w)") == page.evaluate("Array.from(last.W[0].w)")
    assert errors == []
    page.close()
    again.close()


def test_each_data_set_has_its_own_noise_and_a_failed_upload_keeps_the_data(server, browser, tmp_path):
    page, errors = open_page(browser, server + "/")
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output:')")
    for name, noise in [("blobs", "1.00"), ("circles", "0.10"), ("moons", "0.25")]:
        page.select_option("[data-key='data.name']", name)
        assert page.text_content("#noise-out") == noise
    page.wait_for_timeout(300)  # the setup of moons is sent 120 ms after the last change
    page.wait_for_function("!settingUp")  # and the server has it
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,y\n1,2,3,0\n4,5,6,1\n")
    with page.expect_file_chooser() as chooser:
        page.select_option("[data-key='data.name']", "csv")
    chooser.value.set_files(str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "expected columns x1, x2, y" in page.text_content("#error")
    assert page.input_value("[data-key='data.name']") == "moons"  # the data still training
    assert [e for e in errors if "422" not in e] == []  # the refused upload's response is the only error
    page.close()


def test_the_output_plot_is_visible_at_1024x768(server, browser):
    page, errors = open_page(browser, server + "/", width=1024, height=768)
    page.wait_for_function("document.getElementById('output-title').textContent.startsWith('Output:')")
    box = page.get_by_test_id("boundary").bounding_box()
    assert box["width"] >= 240 and box["y"] + box["height"] <= 768, box
    page.screenshot(path=str(ARTIFACTS / "playground-1024.png"))
    assert errors == []
    page.close()


def test_a_per_layer_activation_and_dropout_train_and_the_link_restores_them(server, browser):
    page, errors = open_page(browser, server + "/#model.hidden=[8,8]&train.epochs=40")
    page.wait_for_function("document.querySelectorAll('.layer-activation select').length === 2")
    page.get_by_test_id("layer-activation-2").select_option("relu")  # layer 1 keeps the page's tanh
    page.fill("[data-key='model.dropout']", "0.2")
    page.press("[data-key='model.dropout']", "Tab")  # typed, then left: one change
    page.wait_for_function("decodeURIComponent(location.hash).includes('model.activation=[\"tanh\",\"relu\"]')")
    assert "model.dropout=0.2" in page.url
    assert page.input_value("[data-key='model.activation']") == ""  # the one-for-all selector says "per layer"
    page.wait_for_timeout(400)  # past the page's pause before it sets a change up
    page.wait_for_function("!settingUp && !document.querySelector('[data-testid=train]').disabled")

    page.get_by_test_id("train").click()
    page.wait_for_function("document.querySelector('[data-testid=epoch]').textContent === '40'", timeout=60_000)
    assert page.evaluate("last.status") != "training"
    exported = page.evaluate("""async () => (await fetch('/api/export?format=toml', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify(requestBody())})).text()""")
    model = tomllib.loads(exported)["model"]
    assert (model["activation"], model["dropout"]) == (["tanh", "relu"], 0.2)
    page.get_by_test_id("export-code").click()
    page.wait_for_function("document.getElementById('code').textContent.includes('tl.train')")  # fetched
    code = page.text_content("#code")
    assert '"activation": ["tanh", "relu"]' in code and '"dropout": 0.2' in code, code
    page.keyboard.press("Escape")

    again, more_errors = open_page(browser, page.url)  # the shared link
    again.wait_for_function("document.querySelectorAll('.layer-activation select').length === 2")
    assert again.get_by_test_id("layer-activation-1").input_value() == "tanh"
    assert again.get_by_test_id("layer-activation-2").input_value() == "relu"
    assert again.input_value("[data-key='model.dropout']") == "0.2"
    again.click("#layer-add")  # a new layer takes the last layer's activation
    again.wait_for_function("document.querySelectorAll('.layer-activation select').length === 3")
    assert again.get_by_test_id("layer-activation-3").input_value() == "relu"
    assert errors == more_errors == []
    page.close()
    again.close()
