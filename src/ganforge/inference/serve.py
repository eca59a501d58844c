"""`ganforge serve`: an exported generator behind a small HTTP API (FastAPI), and its web page.

    GET  /healthz       liveness: {"status": "ok"}
    GET  /v1/info       the model's metadata, the request limits, the latent algorithm
    POST /v1/generate   {num, seed, labels, truncation, format: png|json, nrow}
                        -> one PNG grid (the bytes `ganforge generate` writes for the same
                           seed), or JSON with one base64 PNG per sample (points for toy models)
    GET  /              the browser page: runs the same ONNX file client-side (onnxruntime-web)
    GET  /model.onnx    the model file, for the page
    GET  /docs          OpenAPI page (Swagger UI served from package data); /openapi.json

Bad requests get a 4xx with {"error": "<one line naming the field and the fix>"}. The generator's
sessions are shared by the worker threads: onnxruntime's `InferenceSession.run` is thread-safe,
so requests are served concurrently. Torch is never imported.

Hostile clients (`run_server`): a request whose head and body have not arrived within
`request_timeout` seconds is cut off, and so is an idle keep-alive connection (uvicorn's
`timeout_keep_alive`); past `max_connections` open connections the oldest one still waiting
for its request is closed, so that idle sockets can never use up the file descriptors; past
`max_pending` generate requests in flight the answer is 503 with Retry-After; /healthz and
/v1/info run on the event loop and never wait for the generate pool; the Host header must be
one of `allowed_hosts` (starlette's TrustedHostMiddleware: no DNS rebinding); /model.onnx is
the bytes checked at load, never the path read again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import mimetypes
import os
import re
import resource
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ganforge.inference import prng, web
from ganforge.inference.generator import NO_CLASSES, Generator, GeneratorInputError
from ganforge.inference.grid import grid_png, png_bytes
from ganforge.inference.session import load_model_bytes

DEFAULT_MAX_NUM = 256
DEFAULT_MAX_BODY = 64 * 1024  # bytes: room for 256 labels many times over
DEFAULT_MAX_PENDING = 32  # generate requests admitted at once (running or waiting)
DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds for a request's head and body to arrive
KEEP_ALIVE_S = 5  # idle keep-alive connections are closed after this (uvicorn's option)
MAX_HEADER_BYTES = 16 * 1024  # h11's limit on a request head
# listen() backlog (uvicorn's default), which is also how many sockets asyncio accepts in one
# go before any of them reaches the protocol (and its eviction): reserved in the fd budget,
# and smaller under a low descriptor limit. Too small a queue drops bursts of connects (1 s
# SYN retries).
MAX_BACKLOG = 2048
RUN_THREADS = 2  # generate requests run side by side (each splits its batch over threads)
# Sample values one request may ask for in total: large samples lower the effective max_num.
MAX_REQUEST_VALUES = 64 * 1024 * 1024


class GenerateRequest(BaseModel):
    """A request for samples; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    num: int = Field(16, ge=1, description="Number of samples (at most the server's max_num).")
    seed: int = Field(0, ge=0, le=prng.MAX_SEED, description="Seed of the latents.")
    labels: int | list[int] | None = Field(
        None,
        description="Models with classes (conditional or latent-class): one class for all, "
        "or one per sample. Default: a conditional model cycles through its classes, a "
        "latent-class model draws them from the latents. A model without classes takes none.",
    )
    truncation: float = Field(
        1.0, gt=0.0, le=1.0, description="ψ in (0, 1]: latents scaled toward 0; 1 = none."
    )
    format: Literal["png", "json"] = Field(
        "png", description="png: one grid image; json: one base64 PNG per sample."
    )
    nrow: int | None = Field(None, ge=1, description="Images per grid row (png).")


class ErrorBody(BaseModel):
    """What every 4xx answer holds: one line naming the field and the fix."""

    error: str


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _one_line(err: RequestValidationError) -> str:
    """pydantic's error list as one line: 'num: Input should be ... (got -1)'."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    got = first.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {_short(got)})"
    more = len(err.errors()) - 1
    tail = f"; and {more} more problem{'s' * (more > 1)}" if more else ""
    return f"{where}: {first.get('msg', 'invalid')}{shown}{tail}"


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class _BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over {self.limit} bytes: ask for fewer samples per request"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _error(413, message)(scope, receive, send)
                return
        seen = 0

        async def bounded_receive() -> dict:
            nonlocal seen
            event = await receive()
            seen += len(event.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, message)
            return event

        await self.app(scope, bounded_receive, send)


def local_hosts(host: str) -> list[str]:
    """The default Host allow-list: the bind address and the loopback names."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    return hosts if host in hosts else [host, *hosts]


def create_app(
    generator: Generator,
    model_path: str | None = None,
    max_num: int = DEFAULT_MAX_NUM,
    max_body: int = DEFAULT_MAX_BODY,
    allowed_hosts: Sequence[str] | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> FastAPI:
    """The FastAPI app serving `generator` (and its file at /model.onnx for the page).

    `allowed_hosts`: the Host headers answered (None: any; `run_server`'s callers pass
    `local_hosts(host)` by default). `max_pending`: generate requests admitted at once; more
    get 503 with Retry-After.
    """
    for pattern in allowed_hosts or ():
        if "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
            raise ValueError(f"allowed host {pattern!r}: use a name, an address, * or *.domain")
    # Module scripts and WebAssembly need their own MIME types, which some systems lack.
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    meta = generator.metadata
    # Large samples: fewer per request, so that one request's images stay bounded in memory.
    max_num = max(1, min(max_num, MAX_REQUEST_VALUES // meta.sample_values))
    model_bytes = generator.model_bytes
    if model_bytes is None and model_path is not None:
        model_bytes = load_model_bytes(model_path)  # read and checked once, here
    limiter = anyio.CapacityLimiter(RUN_THREADS)
    pending = 0
    app = FastAPI(
        title="ganforge generator",
        version=meta.ganforge_version,
        description=f"{meta.arch} generator, samples {list(meta.sample_shape)}",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return _error(422, _one_line(err))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))

    # Both run on the event loop (async, no blocking work): they answer while every
    # generate thread is busy.
    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/info", summary="The model's metadata and the request limits")
    async def info() -> dict[str, Any]:
        return {
            "model": meta.as_dict(),
            "latents": {"algorithm": prng.ALGORITHM, "max_seed": prng.MAX_SEED},
            "limits": {"max_num": max_num, "max_body_bytes": max_body, "max_pending": max_pending},
            "providers": generator.providers,
        }

    @app.post(
        "/v1/generate",
        summary="Draw samples",
        responses={
            200: {"content": {"image/png": {}, "application/json": {}}},
            413: {"model": ErrorBody, "description": "Request body too large"},
            422: {"model": ErrorBody, "description": "A field is out of range or unknown"},
            503: {"model": ErrorBody, "description": "Busy: max_pending requests in flight"},
        },
    )
    async def generate(request: GenerateRequest) -> Response:
        nonlocal pending
        if request.num > max_num:
            raise HTTPException(422, f"num: {request.num} is over this server's max_num {max_num}")
        if request.format == "png" and not meta.is_image:
            raise HTTPException(422, "format: this generator makes points; ask for format json")
        if request.labels is not None and not meta.has_classes:
            raise HTTPException(422, f"labels: {NO_CLASSES}; leave labels out")
        if pending >= max_pending:
            return JSONResponse(
                {"error": f"busy: {pending} generate requests in flight; retry in a second"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        pending += 1
        try:
            return await anyio.to_thread.run_sync(_answer, request, limiter=limiter)
        finally:
            pending -= 1

    def _answer(request: GenerateRequest) -> Response:
        """Sampling and encoding, in a worker thread (the event loop stays free)."""
        try:
            samples = generator.sample(
                request.num, seed=request.seed, labels=request.labels,
                truncation=request.truncation,
            )  # fmt: skip
        except GeneratorInputError as err:
            raise HTTPException(422, str(err)) from None
        if request.format == "png":
            return Response(grid_png(samples, nrow=request.nrow), media_type="image/png")
        body: dict[str, Any] = {"seed": request.seed, "num": request.num}
        if meta.is_image:
            body["images"] = [base64.b64encode(png_bytes(img)).decode() for img in samples]
        else:
            body["points"] = np.asarray(samples, np.float64).tolist()
        return JSONResponse(body)

    @app.get("/model.onnx", include_in_schema=False)
    def model_file() -> Response:
        if model_bytes is None:
            raise HTTPException(404, "this server was started without a model file")
        return Response(model_bytes, media_type="application/octet-stream")

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        gone = web.missing(web.PAGE_FILES)
        if gone:
            raise HTTPException(503, f"the page's runtime is not built ({gone[0]}): "
                                     f"{web.BUILD_HINT}")  # fmt: skip
        if not meta.is_image:
            raise HTTPException(404, "the page draws images; this generator makes points")
        return FileResponse(web.STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        gone = web.missing(web.DOCS_FILES)
        if gone:
            raise HTTPException(503, f"Swagger UI is not built ({gone[0]}): {web.BUILD_HINT}; "
                                     "the schema is at /openapi.json")  # fmt: skip
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="ganforge generator API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.add_middleware(_BodyLimit, limit=max_body)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app


def connection_budget() -> tuple[int, int]:
    """(connections, backlog) to allow: from the file descriptors this process has left.

    An accepted connection past `connections` closes the oldest one still waiting for its
    request, so a flood of idle sockets does not reach the descriptor limit (where accept()
    fails with EMFILE and nothing, not even /healthz, gets through). asyncio accepts up to
    `backlog` sockets per wake-up, a few wake-ups before the first evicted ones are closed:
    three backlogs are kept free for that, and the backlog shrinks with a low limit.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        in_use = 64
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    backlog = max(8, min(MAX_BACKLOG, soft // 8))
    return max(8, min(1024, soft - in_use - 3 * backlog - 16)), backlog


def guarded_protocol(request_timeout: float, max_connections: int) -> type:
    """uvicorn's h11 protocol with a deadline per request and idle-connection eviction.

    uvicorn bounds the gap between keep-alive requests (`timeout_keep_alive`) and a head's
    size (`h11_max_incomplete_event_size`), but not the time a client takes to send its
    first request, its head or its body, and `limit_concurrency` answers 503 to everyone once
    idle sockets fill it. This subclass adds those two things only; the HTTP handling is
    uvicorn's.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _opened = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._opened = time.monotonic()
            self._arm()
            if len(self.connections) > max_connections:
                waiting = [
                    c
                    for c in self.connections
                    if c is not self and isinstance(c, GuardedH11Protocol) and c._waiting()
                ]
                victim = min(waiting, key=lambda c: c._opened) if waiting else self
                victim.transport.abort()  # frees the descriptor now
                self.connections.discard(victim)  # not counted again before connection_lost

        def _waiting(self) -> bool:
            """No request head received yet (a fresh connection, or idle between requests)."""
            return self.conn.their_state is h11.IDLE

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(request_timeout, self._expire)

        def _expire(self) -> None:
            """The head or the body has not arrived in time: cut the connection off."""
            self._deadline = None
            if self.conn.their_state is not h11.DONE and not self.transport.is_closing():
                self.transport.abort()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return GuardedH11Protocol


class RateLimitFilter(logging.Filter):
    """At most one record per `interval` seconds for each message: an accept() loop failing
    with EMFILE must not write a traceback per attempt (600 MB of log in 2 minutes)."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        # Same first line, numbers aside (fds, timer handles, ports): the same message.
        key = re.sub(r"\d+", "#", str(record.msg).split("\n", 1)[0])[:120]
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like it in the last {self.interval:g} s)"
        if len(self._last) > 1000:  # bounded memory, whatever the messages
            self._last.clear()
        return True


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket bound to host:port (OSError when it cannot be bound)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run_server(
    app: FastAPI,
    sock: socket.socket,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    max_connections: int | None = None,
    log_level: str = "info",
    on_start: Callable[[], None] | None = None,
) -> None:
    """Serve `app` with uvicorn on the bound `sock`, with the guards of this module's doc."""
    import uvicorn

    limit, backlog = connection_budget()
    limit = max_connections or limit
    config = uvicorn.Config(
        app,
        http=guarded_protocol(request_timeout, limit),
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # uvicorn's own bound, a backstop: eviction keeps connections under it.
        limit_concurrency=limit + 2,
        backlog=backlog,
        log_level=log_level,
    )
    # After uvicorn configured its loggers: asyncio's accept() errors and uvicorn's own.
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(RateLimitFilter())
    if on_start is not None:
        on_start()
    uvicorn.Server(config).run(sockets=[sock])
