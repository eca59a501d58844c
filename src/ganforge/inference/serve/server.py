"""Running the app: uvicorn on a bound socket, with the connection guard and a quiet log."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable

from fastapi import FastAPI

from ganforge.inference.serve.protocol import connection_budget, guarded_protocol

DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds for a request's head and body to arrive
KEEP_ALIVE_S = 5  # idle keep-alive connections are closed after this (uvicorn's option)
MAX_HEADER_BYTES = 16 * 1024  # h11's limit on a request head


class RateLimitFilter(logging.Filter):
    """At most one record per `interval` seconds for each message: an accept() loop failing
    with EMFILE must not write a traceback per attempt (the log would fill the disk)."""

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
    """Serve `app` with uvicorn on the bound `sock`, with the guards of the package's doc."""
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
