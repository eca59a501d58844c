"""The connection guard: a deadline per request and eviction of idle connections (uvicorn h11)."""

from __future__ import annotations

import asyncio
import os
import resource
import time

# listen() backlog (uvicorn's default), which is also how many sockets asyncio accepts in one
# go before any of them reaches the protocol (and its eviction): reserved in the fd budget,
# and smaller under a low descriptor limit. Too small a queue drops bursts of connects (1 s
# SYN retries).
MAX_BACKLOG = 2048


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
