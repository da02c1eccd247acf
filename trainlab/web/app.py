"""The playground's FastAPI app: the page, a few JSON routes, and the training WebSocket.

``create_app(host, port)`` must be told the address it is served on: requests naming any other
host are refused (see ``security``). Every route answers bad input with a 4xx and
``{"error": "one clear line"}``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request as HTTPRequest, UploadFile, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from trainlab.config import ACTIVATIONS, DATASETS, FIXED_DATASETS, INITS, OPTIMIZERS, REGRESSION_DATASETS, SCHEDULES, RunConfig
from trainlab.data import DEFAULT_NOISE, DEFAULT_REGRESSION_NOISE
from trainlab.errors import BadInput
from trainlab.web.export import python_snippet, toml_text
from trainlab.web.limits import Limits, RequestRefused, Slots
from trainlab.web.requests import make_data, parse_request
from trainlab.web.security import GuardMiddleware, HostPolicy
from trainlab.web.session import Tab
from trainlab.web.uploads import Uploads

STATIC = Path(__file__).parent / "static"


def create_app(host: str = "127.0.0.1", port: int = 8765, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    uploads, slots = Uploads(limits.max_samples), Slots(limits.max_trainings)
    tabs: set[Tab] = set()

    async def shut_down() -> None:
        # Tabs still open stop their trainings and comparisons (at their next slice or epoch) first.
        await asyncio.gather(*(tab.close() for tab in list(tabs)))
        uploads.close()

    app = FastAPI(title="trainlab playground", docs_url=None, redoc_url=None, openapi_url=None,
                  on_shutdown=[shut_down])
    app.state.slots = slots
    app.add_middleware(GuardMiddleware, policy=HostPolicy(host, port))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def parse(body: Any, compare: bool = False):
        return parse_request(body, uploads, limits, compare=compare)

    def data_for(request):
        return make_data(request, limits)

    def parse_either(body: Any):
        # The HTTP routes take a session's setup or a comparison; a "vary" makes it the latter.
        return parse(body, compare=isinstance(body, dict) and "vary" in body)

    @app.exception_handler(BadInput)
    async def bad_input(_: HTTPRequest, e: BadInput) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=e.status if isinstance(e, RequestRefused) else 422)

    async def json_body(request: HTTPRequest) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise RequestRefused("expected a JSON body") from None

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/options")
    async def options() -> dict:
        """What the page offers: the choices of each setting, the defaults and the limits."""
        return {
            "datasets": [d for d in DATASETS if d not in FIXED_DATASETS],  # the plane shows 2-D data
            "regression_datasets": list(REGRESSION_DATASETS),
            "activations": list(ACTIVATIONS),
            "inits": list(INITS),
            "optimizers": list(OPTIMIZERS),
            "schedules": list(SCHEDULES),
            "defaults": RunConfig().model_dump(mode="json", include={"data", "model", "optim", "train"}),
            "noise": {"classification": DEFAULT_NOISE, "regression": DEFAULT_REGRESSION_NOISE},
            "limits": vars(limits),
        }

    @app.post("/api/check")
    async def check(request: HTTPRequest) -> dict:
        """Validate a setup without training it: the normalised config, or a 422 naming the key."""
        body = await json_body(request)
        parsed = parse_either(body)
        await asyncio.to_thread(data_for, parsed)
        return {"ok": True, "config": parsed.config.model_dump(mode="json", exclude={"grid"} if not parsed.compare
                                                               else set())}

    @app.post("/api/export")
    async def export(request: HTTPRequest, format: str = "toml") -> PlainTextResponse:
        body = await json_body(request)
        parsed = parse_either(body)
        if format == "toml":
            return PlainTextResponse(toml_text(parsed), media_type="application/toml", headers={
                "Content-Disposition": 'attachment; filename="playground.toml"'})
        if format == "python":
            return PlainTextResponse(python_snippet(parsed), media_type="text/x-python")
        raise RequestRefused(f"format {format!r}: expected toml or python")

    @app.post("/api/upload")
    async def upload(file: UploadFile) -> dict:
        # The size is checked again after reading: Content-Length is only what the client claims.
        content = await file.read(limits.max_upload_bytes + 1)
        if len(content) > limits.max_upload_bytes:
            raise RequestRefused(f"upload: at most {limits.max_upload_bytes // 1024} KiB of CSV", status=413)
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestRefused("upload: expected a UTF-8 text CSV file (x1,x2,y)") from None
        item = await asyncio.to_thread(uploads.add, content, file.filename or "points.csv")
        return {"upload": item.id, "filename": item.filename, "rows": item.rows, "columns": item.columns}

    @app.middleware("http")
    async def refuse_big_bodies(request: HTTPRequest, call_next):
        # Before the multipart parser spools a huge body to disk; a body of unstated size is refused
        # too, since its size is only known once it is all in.
        size = request.headers.get("content-length", "")
        if request.method == "POST" and not size.isdigit():
            return JSONResponse({"error": "request body without Content-Length: refused"}, status_code=411)
        if size.isdigit() and int(size) > limits.max_upload_bytes + 64 * 1024:
            return JSONResponse({"error": f"request body too large: at most {limits.max_upload_bytes // 1024} "
                                          "KiB of CSV"}, status_code=413)
        return await call_next(request)

    @app.websocket("/ws")
    async def socket(ws: WebSocket) -> None:
        tab = Tab(ws, parse, data_for, slots, limits)
        tabs.add(tab)
        await tab.run()  # closes the tab as it ends
        tabs.discard(tab)  # (cancelled while closing, it stays for shut_down to close and wait for)

    return app
