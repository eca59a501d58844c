"""Bounds on what one client can ask of the app: body size, samples, requests in flight, Host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException

from ganforge.inference.metadata import ModelMetadata
from ganforge.inference.serve.schema import error

DEFAULT_MAX_NUM = 256
DEFAULT_MAX_BODY = 64 * 1024  # bytes: room for 256 labels many times over
DEFAULT_MAX_PENDING = 32  # generate requests admitted at once (running or waiting)
RUN_THREADS = 2  # generate requests run side by side (each splits its batch over threads)
# Sample values one request may ask for in total: large samples lower the effective max_num.
MAX_REQUEST_VALUES = 64 * 1024 * 1024


class BodyLimit:
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
                await error(413, message)(scope, receive, send)
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


def effective_max_num(max_num: int, meta: ModelMetadata) -> int:
    """`max_num`, lowered for large samples so that one request's images stay bounded."""
    return max(1, min(max_num, MAX_REQUEST_VALUES // meta.sample_values))


def check_allowed_hosts(allowed_hosts: Sequence[str] | None) -> None:
    """ValueError for a Host pattern TrustedHostMiddleware would not read as meant."""
    for pattern in allowed_hosts or ():
        if "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
            raise ValueError(f"allowed host {pattern!r}: use a name, an address, * or *.domain")


def local_hosts(host: str) -> list[str]:
    """The default Host allow-list: the bind address and the loopback names."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    return hosts if host in hosts else [host, *hosts]
