"""The FastAPI app: `create_app` composes the routes, each group added by its own function."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ganforge.inference import prng, web
from ganforge.inference.generator import NO_CLASSES, Generator, GeneratorInputError
from ganforge.inference.grid import grid_png, png_bytes
from ganforge.inference.metadata import ModelMetadata
from ganforge.inference.serve.limits import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_NUM,
    DEFAULT_MAX_PENDING,
    RUN_THREADS,
    BodyLimit,
    check_allowed_hosts,
    effective_max_num,
)
from ganforge.inference.serve.schema import ErrorBody, GenerateRequest, error, one_line
from ganforge.inference.session import load_model_bytes


@dataclass
class _Served:
    """What the routes share: the generator, the limits and the generate requests in flight."""

    generator: Generator
    model_bytes: bytes | None
    max_num: int
    max_body: int
    max_pending: int
    limiter: anyio.CapacityLimiter
    pending: int = 0

    @property
    def meta(self) -> ModelMetadata:
        return self.generator.metadata


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
    check_allowed_hosts(allowed_hosts)
    # Module scripts and WebAssembly need their own MIME types, which some systems lack.
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    model_bytes = generator.model_bytes
    if model_bytes is None and model_path is not None:
        model_bytes = load_model_bytes(model_path)  # read and checked once, here
    served = _Served(
        generator, model_bytes, effective_max_num(max_num, generator.metadata), max_body,
        max_pending, anyio.CapacityLimiter(RUN_THREADS),
    )  # fmt: skip
    meta = generator.metadata
    app = FastAPI(
        title="ganforge generator",
        version=meta.ganforge_version,
        description=f"{meta.arch} generator, samples {list(meta.sample_shape)}",
        docs_url=None,
        redoc_url=None,
    )
    _add_error_handlers(app)
    _add_status_routes(app, served)
    _add_generate_route(app, served)
    _add_page_routes(app, served)
    app.add_middleware(BodyLimit, limit=max_body)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answer is `{"error": "<one line>"}`."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return error(422, one_line(err))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, err: HTTPException) -> JSONResponse:
        return error(err.status_code, str(err.detail))


def _add_status_routes(app: FastAPI, served: _Served) -> None:
    """/healthz and /v1/info: on the event loop (async, no blocking work), so that they
    answer while every generate thread is busy."""

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/info", summary="The model's metadata and the request limits")
    async def info() -> dict[str, Any]:
        return {
            "model": served.meta.as_dict(),
            "latents": {"algorithm": prng.ALGORITHM, "max_seed": prng.MAX_SEED},
            "limits": {
                "max_num": served.max_num,
                "max_body_bytes": served.max_body,
                "max_pending": served.max_pending,
            },
            "providers": served.generator.providers,
        }


def _add_generate_route(app: FastAPI, served: _Served) -> None:
    """POST /v1/generate: checked on the event loop, sampled and encoded in a worker thread."""

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
        _check_request(served, request)
        if served.pending >= served.max_pending:
            return JSONResponse(
                {"error": f"busy: {served.pending} generate requests in flight; retry in a second"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        served.pending += 1
        try:
            return await anyio.to_thread.run_sync(_answer, served, request, limiter=served.limiter)
        finally:
            served.pending -= 1


def _check_request(served: _Served, request: GenerateRequest) -> None:
    """What the schema cannot know: this server's max_num and this model's kind and classes."""
    meta = served.meta
    if request.num > served.max_num:
        raise HTTPException(
            422, f"num: {request.num} is over this server's max_num {served.max_num}"
        )
    if request.format == "png" and not meta.is_image:
        raise HTTPException(422, "format: this generator makes points; ask for format json")
    if request.labels is not None and not meta.has_classes:
        raise HTTPException(422, f"labels: {NO_CLASSES}; leave labels out")


def _answer(served: _Served, request: GenerateRequest) -> Response:
    """Sampling and encoding, in a worker thread (the event loop stays free)."""
    try:
        samples = served.generator.sample(
            request.num, seed=request.seed, labels=request.labels,
            truncation=request.truncation,
        )  # fmt: skip
    except GeneratorInputError as err:
        raise HTTPException(422, str(err)) from None
    if request.format == "png":
        return Response(grid_png(samples, nrow=request.nrow), media_type="image/png")
    body: dict[str, Any] = {"seed": request.seed, "num": request.num}
    if served.meta.is_image:
        body["images"] = [base64.b64encode(png_bytes(img)).decode() for img in samples]
    else:
        body["points"] = np.asarray(samples, np.float64).tolist()
    return JSONResponse(body)


def _add_page_routes(app: FastAPI, served: _Served) -> None:
    """The browser page at /, the model file it runs, Swagger UI at /docs, their assets."""

    @app.get("/model.onnx", include_in_schema=False)
    def model_file() -> Response:
        if served.model_bytes is None:
            raise HTTPException(404, "this server was started without a model file")
        return Response(served.model_bytes, media_type="application/octet-stream")

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        gone = web.missing(web.PAGE_FILES)
        if gone:
            raise HTTPException(503, f"the page's runtime is not built ({gone[0]}): "
                                     f"{web.BUILD_HINT}")  # fmt: skip
        if not served.meta.is_image:
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
