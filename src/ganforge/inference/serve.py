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
"""

from __future__ import annotations

import base64
import mimetypes
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from ganforge.inference import prng, web
from ganforge.inference.generator import Generator, GeneratorInputError
from ganforge.inference.grid import grid_png, png_bytes

DEFAULT_MAX_NUM = 256
DEFAULT_MAX_BODY = 64 * 1024  # bytes: room for 256 labels many times over


class GenerateRequest(BaseModel):
    """A request for samples; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    num: int = Field(16, ge=1, description="Number of samples (at most the server's max_num).")
    seed: int = Field(0, ge=0, le=prng.MAX_SEED, description="Seed of the latents.")
    labels: int | list[int] | None = Field(
        None, description="Conditional models: one class for all, or one per sample."
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


def create_app(
    generator: Generator,
    model_path: str | None = None,
    max_num: int = DEFAULT_MAX_NUM,
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The FastAPI app serving `generator` (and its file at /model.onnx for the page)."""
    # Module scripts and WebAssembly need their own MIME types, which some systems lack.
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    meta = generator.metadata
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

    @app.get("/healthz", summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/info", summary="The model's metadata and the request limits")
    def info() -> dict[str, Any]:
        return {
            "model": meta.as_dict(),
            "latents": {"algorithm": prng.ALGORITHM, "max_seed": prng.MAX_SEED},
            "limits": {"max_num": max_num, "max_body_bytes": max_body},
            "providers": generator.providers,
        }

    @app.post(
        "/v1/generate",
        summary="Draw samples",
        responses={
            200: {"content": {"image/png": {}, "application/json": {}}},
            413: {"model": ErrorBody, "description": "Request body too large"},
            422: {"model": ErrorBody, "description": "A field is out of range or unknown"},
        },
    )
    def generate(request: GenerateRequest) -> Response:
        if request.num > max_num:
            raise HTTPException(422, f"num: {request.num} is over this server's max_num {max_num}")
        if request.format == "png" and not meta.is_image:
            raise HTTPException(422, "format: this generator makes points; ask for format json")
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
        if model_path is None:
            raise HTTPException(404, "this server was started without a model file")
        return FileResponse(model_path, media_type="application/octet-stream")

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
    return app
