"""The playground's HTTP and WebSocket API through FastAPI's TestClient: pages, validation, limits, Host/Origin, export."""

from __future__ import annotations

import base64
import csv
import re
import tomllib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import assert_bad_input
from trainlab.activations import ACTIVATIONS
from trainlab.web import create_app
from trainlab.web.limits import Limits

BASE = "http://127.0.0.1:8765"
WS = "ws://127.0.0.1:8765/ws"
SMALL = {"config": {"data": {"name": "moons", "n_samples": 200}, "model": {"hidden": [8]},
                    "optim": {"name": "adam", "lr": 0.02}, "train": {"epochs": 30, "batch_size": 32}}, "seed": 3}


@pytest.fixture
def client():
    with TestClient(create_app("127.0.0.1", 8765), base_url=BASE) as c:
        yield c


def run_to_end(ws, body) -> dict:
    """Set up and train a session over the socket; return the ready message and the last update."""
    ws.send_json({"type": "setup", **body})
    ready = ws.receive_json()
    assert ready["type"] == "ready", ready
    assert ws.receive_json()["epoch"] == 0
    ws.send_json({"type": "play"})
    history: dict[str, list] = {}
    grad_norms: list[list[float]] = []
    while True:
        m = ws.receive_json()
        assert m["type"] == "update", m
        for k, v in m["history"].items():
            history.setdefault(k, []).extend(v)
        grad_norms += m["layer_grad_norms"]
        if m["status"] != "training":
            return {"ready": ready, "last": m, "history": history, "grad_norms": grad_norms}


def compare_results(ws, n: int = 2) -> tuple[list[dict], list[float]]:
    """A comparison's settings as they finish, and the progress reported on the way."""
    settings, progress = [], []
    while len(settings) < n:
        m = ws.receive_json()
        assert m["type"] in ("compare_progress", "compare_result"), m
        if m["type"] == "compare_progress":
            progress.append(m["done"])
        else:
            settings += m["settings"]
    return settings, progress


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="train"' in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for name in ("/", "/static/app.js", "/static/style.css"):  # nothing is fetched from the network
        urls = set(re.findall(r"https?://[^\"'` )]+", client.get(name).text))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls
    options = client.get("/api/options").json()
    assert options["limits"]["max_layers"] == 6
    assert options["activations"] == list(ACTIVATIONS) and options["regression_datasets"] == ["plane", "gaussian", "csv"]


def test_training_session_streams_every_epoch(client):
    with client.websocket_connect(WS) as ws:
        out = run_to_end(ws, SMALL)
    ready, last, history = out["ready"], out["last"], out["history"]
    assert ready["sizes"] == [2, 8, 2] and len(ready["points"]["train"]["x"]) == 140
    assert last["epoch"] == 30 and last["status"] == "ok"
    assert len(history["train_loss"]) == 30
    grid = ready["neuron_grid"]
    assert len(last["neurons"]) == 1 and len(base64.b64decode(last["neurons"][0])) == 8 * grid * grid
    assert [layer["shape"] for layer in last["weights"]] == [[8, 2], [2, 8]]
    w = np.frombuffer(base64.b64decode(last["weights"][0]["w"]), "<f4").reshape(8, 2)
    assert np.abs(w).max() > 0
    assert last["output"]["kind"] == "probability"


def test_streamed_layer_gradient_norms_are_the_doctors(client):
    from trainlab.config import config_from_dict
    from trainlab.train import train

    with client.websocket_connect(WS) as ws:
        streamed = run_to_end(ws, SMALL)["grad_norms"]
    extra = train(config_from_dict(SMALL["config"]), seed=SMALL["seed"], diagnostics=True).extra
    assert len(streamed) == 30
    for layer in (1, 2):
        assert [epoch[layer - 1] for epoch in streamed] == pytest.approx(extra[f"grad_norm.{layer}"], rel=1e-6)


def test_step_pause_reset(client):
    with client.websocket_connect(WS) as ws:
        ws.send_json({"type": "setup", **SMALL})
        ws.receive_json(), ws.receive_json()
        ws.send_json({"type": "step"})
        step = ws.receive_json()
        while step["progress"]:  # a slice ended inside the epoch
            step = ws.receive_json()
        assert step["epoch"] == 1 and len(step["history"]["train_loss"]) == 1
        ws.send_json({"type": "reset"})
        assert ws.receive_json()["type"] == "reset"
        assert ws.receive_json()["epoch"] == 0


def test_regression_session_reports_mse_and_no_accuracy(client):
    body = {"config": {"data": {"name": "plane", "task": "regression", "n_samples": 100},
                       "train": {"epochs": 5}, "optim": {"l1": 0.001}}, "seed": 0}
    with client.websocket_connect(WS) as ws:
        out = run_to_end(ws, body)
    assert out["ready"]["sizes"][-1] == 1 and out["last"]["output"]["kind"] == "value"
    assert all(v is None for v in out["history"]["val_acc"])


@pytest.mark.parametrize("body, status, fragment", [
    ({"config": {"model": {"activation": "swish"}}}, 422, "model.activation"),
    ({"config": {"model": {"hidden": [8], "activation": ["relu", "tanh"]}}}, 422, "model.activation: expected one"),
    ({"config": {"model": {"dropout": 1.5}}}, 422, "model.dropout"),
    ({**SMALL, "vary": {"model.dropout": [0.1, [0.2] * 7]}}, 422, "model.dropout: expected one"),
    ({"config": {"data": {"name": "csv", "path": "/etc/passwd"}}}, 422, "file paths are not accepted"),
    ({"config": {"data": {"name": "csv"}}}, 422, "upload"),
    ({"config": {"grid": {"optim.lr": [1, 2]}}}, 422, "config.grid"),
    ({"config": {"data": {"n_samples": 100000}}}, 422, "at most 5000 points"),
    ({"config": {"model": {"hidden": [8] * 7}}}, 422, "at most 6 hidden layers"),
    ({"config": {"model": {"hidden": [500]}}}, 422, "at most 64 units"),
    ({"config": {"train": {"epochs": 10**6}}}, 422, "train.epochs"),
    ({"config": {}, "seed": -1}, 422, "seed"),
    ({**SMALL, "vary": {"data.noise": [0.1, 0.2]}}, 422, "same data"),
    ({**SMALL, "vary": {"model.activation": ["relu"] * 7}}, 422, "settings"),
    ({**SMALL, "vary": {"model.activation": ["relu", "tanh"]}, "seeds": 100}, 422, "seeds"),
    ({"config": {"data": [1]}}, 422, "config.data: expected an object"),
    ({"config": {"model": "big"}}, 422, "config.model: expected an object"),
    ({"config": {"data": {"name": "blobs", "n_classes": 10**6}}}, 422, "at most 6 classes"),
    ({"config": {"data": {"features": ["x1"] * 20_000}}}, 422, "at most 8 input features"),
    ({"config": {"data": {"features": ["x1", "x1"]}}}, 422, "each feature once"),
    # compare: every setting is held to the same limits, and the whole comparison to a budget of work
    ({**SMALL, "vary": {"model.hidden": [[100000], [8]]}}, 422, "vary: model.hidden: at most 64 units"),
    ({**SMALL, "vary": {"model.hidden": [[1024, 1024, 1024], [8]]}}, 422, "at most 64 units"),
    ({**SMALL, "vary": {"model.hidden": [[8] * 7, [8]]}}, 422, "at most 6 hidden layers"),
    ({**SMALL, "vary": {"train.epochs": [3_000_000, 10]}, "seeds": 10}, 422, "vary: train.epochs: at most 10000"),
    ({"config": {"data": {"n_samples": 5000}, "model": {"hidden": [64] * 6}, "train": {"epochs": 10_000}},
      "vary": {"model.activation": ["relu", "tanh"]}, "seeds": 10}, 413, "too much training"),
    ({**SMALL, "vary": {"model.activation": ["relu", "tanh"], "optim.l1": [0.0], "optim.lr": [0.1],
                        "train.epochs": [5]}}, 422, "at most 3 settings varied"),
])
def test_bad_setups_get_one_clear_4xx_line(client, body, status, fragment):
    for route in ("/api/check", "/api/export"):
        r = client.post(route, json=body)
        assert r.status_code == status, r.text
        message = r.json()["error"]
        assert fragment in message and "\n" not in message and "Traceback" not in message
    with client.websocket_connect(WS) as ws:  # the socket's setup and compare: the same check, the same words
        ws.send_json({"type": "compare" if "vary" in body else "setup", **body})
        m = ws.receive_json()
        assert m["type"] == "error" and m["status"] == status and fragment in m["message"]
    assert client.app.state.slots.used == 0


def test_bad_setup_over_the_socket_is_an_error_message_not_a_crash(client):
    with client.websocket_connect(WS) as ws:
        ws.send_json({"type": "setup", "config": {"optim": {"lr": -1}}})
        m = ws.receive_json()
        assert m["type"] == "error" and m["status"] == 422 and "optim.lr" in m["message"]
        ws.send_json({"type": "play"})
        assert "setup" in ws.receive_json()["message"]
        ws.send_json({"type": "nonsense"})
        assert "unknown message type" in ws.receive_json()["message"]


def test_concurrent_trainings_are_limited():
    app = create_app("127.0.0.1", 8765, Limits(max_trainings=1))
    with TestClient(app, base_url=BASE) as client:
        with client.websocket_connect(WS) as first, client.websocket_connect(WS) as second:
            body = {**SMALL, "config": {**SMALL["config"], "train": {"epochs": 5000}}}
            for ws in (first, second):
                ws.send_json({"type": "setup", **body})
                ws.receive_json(), ws.receive_json()
            first.send_json({"type": "play"})
            assert first.receive_json()["type"] == "update"
            second.send_json({"type": "play"})
            refused = second.receive_json()
            assert refused["type"] == "error" and refused["status"] == 429
            first.send_json({"type": "pause"})
            while first.receive_json()["type"] != "paused":
                pass
            second.send_json({"type": "play"})  # the slot is free again
            assert second.receive_json()["type"] == "update"


@pytest.mark.parametrize("host", ["evil.example:8765", "evil.example", "127.0.0.1:9999", "localhost.evil.example:8765"])
def test_foreign_host_header_is_refused(client, host):
    r = client.get("/", headers={"Host": host})
    assert r.status_code == 421 and "DNS-rebinding" in r.json()["error"]
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect(WS, headers={"Host": host}):
            pass


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765"])
def test_loopback_names_are_accepted(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 200


def test_foreign_origin_websocket_and_posts_are_refused(client):
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect(WS, headers={"Origin": "http://evil.example"}):
            pass
    assert e.value.code == 1008
    r = client.post("/api/check", json=SMALL, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    with client.websocket_connect(WS, headers={"Origin": BASE}) as ws:  # the page's own origin
        ws.send_json({"type": "setup", **SMALL})
        assert ws.receive_json()["type"] == "ready"


def test_non_loopback_and_wildcard_hosts():
    from trainlab.web.security import HostPolicy

    wildcard = HostPolicy("0.0.0.0", 8765)
    assert wildcard.allows("192.168.1.20:8765") and not wildcard.allows("evil.example:8765")
    named = HostPolicy("lab.example", 80)
    assert named.allows("lab.example") and not named.allows("127.0.0.1")


def test_csv_upload_trains_and_exports_by_file_name(client, tmp_path):
    rows = "x1,x2,y\n" + "".join(f"{i % 7 / 7},{i % 5 / 5},{int(i % 7 > 3)}\n" for i in range(60))
    r = client.post("/api/upload", files={"file": ("my points.csv", rows.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["rows"] == 60 and up["filename"] == "my_points.csv"
    body = {"config": {"data": {"name": "csv"}, "train": {"epochs": 3}}, "upload": up["upload"]}
    with client.websocket_connect(WS) as ws:
        assert run_to_end(ws, body)["last"]["epoch"] == 3
    toml = client.post("/api/export?format=toml", json=body).text
    assert 'path = "my_points.csv"' in toml and "trainlab-uploads" not in toml


def test_code_export_spells_json_literals_in_python_but_leaves_strings_alone(client):
    rows = "x1,x2,y\n" + "".join(f"{i % 7 / 7},{i % 5 / 5},{int(i % 7 > 3)}\n" for i in range(60))
    up = client.post("/api/upload", files={"file": ("nullable true.csv", rows.encode(), "text/csv")}).json()
    body = {"config": {"data": {"name": "csv", "stratify": False}}, "upload": up["upload"]}
    code = client.post("/api/export?format=python", json=body).text
    assert 'data={"name": "csv", "stratify": False, "path": "nullable_true.csv"}' in code


@pytest.mark.parametrize("content, status, fragment", [
    (b"x1,x2,y\n1,2,a\n3,oops,b\n", 422, "'oops' is not a number"),
    (b"a,b,c,y\n1,2,3,0\n4,5,6,1\n", 422, "expected columns x1, x2, y"),
    (b"\xff\xfe\x00binary", 422, "UTF-8"),
    (b"x1,x2,y\n" + b"1,2,0\n" * 200_000, 413, "at most"),
])
def test_bad_uploads(client, content, status, fragment):
    r = client.post("/api/upload", files={"file": ("x.csv", content, "text/csv")})
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]
    assert "/tmp" not in r.json()["error"]  # the server's own paths stay private


@pytest.mark.parametrize("optim", [{"name": "momentum", "lr": 0.05, "l1": 0.001}, {"name": "adam", "lr": 0.02}])
def test_export_toml_reproduces_the_web_session_with_trainlab_run(client, cli, tmp_path, optim):
    body = {"config": {"data": {"name": "moons", "n_samples": 200, "features": ["x1", "x2", "x1*x2"]},
                       "model": {"hidden": [8], "activation": "tanh"},
                       "optim": optim, "train": {"epochs": 25}}, "seed": 7}
    with client.websocket_connect(WS) as ws:
        web = run_to_end(ws, body)["history"]
    r = client.post("/api/export?format=toml", json=body)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    (tmp_path / "playground.toml").write_text(r.text)
    result = cli("run", tmp_path / "playground.toml", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    with open(tmp_path / "out" / "runs.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["seed"] == "7"
    assert float(row["final_train_loss"]) == pytest.approx(web["train_loss"][-1], rel=1e-12)
    assert float(row["final_val_loss"]) == pytest.approx(web["val_loss"][-1], rel=1e-12)


def test_export_compare_is_a_grid_over_seeds(client):
    body = {**SMALL, "vary": {"model.activation": ["sigmoid", "relu"]}, "seeds": 3}
    exported = tomllib.loads(client.post("/api/export?format=toml", json=body).text)
    assert exported["seeds"] == 3 and exported["grid"] == {"model.activation": ["sigmoid", "relu"]}


def test_export_code_runs(client):
    code = client.post("/api/export?format=python", json=SMALL).text
    assert "import trainlab as tl" in code and "tl.train(cfg, seed=3)" in code
    namespace: dict = {}
    exec(compile(code.replace("print(", "(lambda *a: None)("), "<snippet>", "exec"), namespace)
    assert namespace["result"].epochs_run == 30
    assert client.post("/api/export?format=pdf", json=SMALL).status_code == 422


def test_compare_mode_trains_every_setting_over_seeds(client):
    body = {**SMALL, "vary": {"model.activation": ["sigmoid", "relu"], "optim.l1": [0.0]}, "seeds": 3}
    with client.websocket_connect(WS) as ws:
        ws.send_json({"type": "compare", **body})
        start = ws.receive_json()
        assert start["type"] == "compare_start" and len(start["settings"]) == 2
        settings, progress = compare_results(ws)
    assert progress == sorted(progress) and 0 < progress[0] < 1  # streamed while it trains
    for s in settings:
        assert s["seeds"] == 3 and s["engine"] == "population"
        assert len(s["curves"]["val_loss"]["mean"]) == 30 and s["output"]["kind"] == "probability"


def test_compare_falls_back_to_the_reference_engine_for_l1(client):
    body = {**SMALL, "vary": {"optim.l1": [0.0, 0.01]}, "seeds": 2}
    with client.websocket_connect(WS) as ws:
        ws.send_json({"type": "compare", **body})
        ws.receive_json()
        settings, _ = compare_results(ws)
    engines = {s["label"]: s["engine"] for s in settings}
    assert engines["l1=0"] == "population" and engines["l1=0.01"].startswith("reference (optim.l1")


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_serve_binds_loopback_by_default_and_warns_otherwise(cli, monkeypatch, host, warned):
    import torch
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # leave the test process's threads alone
    result = cli("serve", "--host", host, "--port", "8999")
    assert result.code == 0 and calls == [{"host": host, "port": 8999, "log_level": "warning",
                                           "ws_per_message_deflate": False}]
    assert ("WARNING" in result.err) == warned
    assert cli("serve", "--port", "0").code == 2


def test_serve_on_a_busy_port_or_unknown_host_is_one_line_and_exit_2(cli):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_bad_input(cli("serve", "--port", port), f"--port {port}", "cannot listen", "in use")
    assert_bad_input(cli("serve", "--host", "no-such-host.invalid", "--port", "8999"), "no-such-host.invalid")


def test_upload_with_more_rows_than_the_limit_is_refused():
    rows = "x1,x2,y\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(60))
    with TestClient(create_app("127.0.0.1", 8765, Limits(max_samples=50)), base_url=BASE) as client:
        r = client.post("/api/upload", files={"file": ("big.csv", rows.encode(), "text/csv")})
    assert r.status_code == 422 and r.json()["error"] == "upload: at most 50 rows in the playground (got 60)"


def test_uploaded_labels_beyond_the_class_limit_are_refused_before_training(client):
    rows = "x1,x2,y\n" + "".join(f"{i},{-i},{i % 9}\n" for i in range(60))
    up = client.post("/api/upload", files={"file": ("many.csv", rows.encode(), "text/csv")}).json()
    body = {"config": {"data": {"name": "csv"}}, "upload": up["upload"]}
    r = client.post("/api/check", json=body)
    assert r.status_code == 422 and "at most 6 classes" in r.json()["error"]
    regression = {"config": {"data": {"name": "csv", "task": "regression"}}, "upload": up["upload"]}
    assert client.post("/api/check", json=regression).status_code == 200  # a real-valued y has no classes


def test_the_output_panels_scores_are_the_runs_val_metrics(client):
    from trainlab.config import config_from_dict
    from trainlab.train import train

    with client.websocket_connect(WS) as ws:
        last = run_to_end(ws, SMALL)["last"]
    val = train(config_from_dict(SMALL["config"]), seed=SMALL["seed"]).metrics["val"]
    assert last["scores"]["confusion"] == val["confusion"]
    assert last["scores"]["macro_f1"] == pytest.approx(val["macro_f1"])


def test_the_playground_offers_only_data_it_can_draw(client):
    options = client.get("/api/options").json()
    assert "function" in options["datasets"] and "digits" not in options["datasets"]
    r = client.post("/api/check", json={"config": {"data": {"name": "digits"}}})
    assert r.status_code == 422 and "2-D data" in r.json()["error"] and "64 inputs" in r.json()["error"]
