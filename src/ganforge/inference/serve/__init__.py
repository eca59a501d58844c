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

The rooms: `schema` (what a request holds, error answers), `limits` (body size, samples,
requests in flight, Host), `app` (the routes), `protocol` (the connection guard), `server`
(uvicorn on a bound socket).
"""

from __future__ import annotations

from ganforge.inference.serve.app import create_app
from ganforge.inference.serve.limits import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_NUM,
    DEFAULT_MAX_PENDING,
    local_hosts,
)
from ganforge.inference.serve.protocol import connection_budget, guarded_protocol
from ganforge.inference.serve.schema import ErrorBody, GenerateRequest
from ganforge.inference.serve.server import (
    DEFAULT_REQUEST_TIMEOUT,
    RateLimitFilter,
    bind,
    run_server,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_NUM",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_REQUEST_TIMEOUT",
    "ErrorBody",
    "GenerateRequest",
    "RateLimitFilter",
    "bind",
    "connection_budget",
    "create_app",
    "guarded_protocol",
    "local_hosts",
    "run_server",
]
