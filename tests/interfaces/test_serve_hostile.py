"""`ganforge serve` under hostile clients, on loopback only: idle and never-ending connections
under a low file-descriptor limit, a flood of max-size requests, foreign Host headers, a busy
port, a model file replaced under the server. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hostile_models import image_model
from serve_helpers import ROOT, free_port, stop
from typer.testing import CliRunner

from ganforge.cli import app as cli
from ganforge.inference import Generator
from ganforge.inference.serve import create_app

STARTUP_S = 60
FD_LIMIT = 256
IDLE = 300
REQUEST_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_model(tmp_path_factory.mktemp("hostile_serve") / "g.onnx", nz=8, shape=(1, 16, 16))


def _serve(model: Path, log: Path, *extra: str, fd_limit: int | None = None):
    """`ganforge serve` in its own process (optionally under RLIMIT_NOFILE = fd_limit)."""
    port = free_port()
    args = ["serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
            "--provider", "cpu", "--threads", "1", *extra]  # fmt: skip
    code = (
        "import resource, sys\n"
        f"if {fd_limit!r}: resource.setrlimit(resource.RLIMIT_NOFILE, ({fd_limit}, {fd_limit}))\n"
        "from ganforge.cli import app\n"
        f"sys.argv = ['ganforge', *{args!r}]\n"
        "app()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if _get(url, "/healthz")[0] in (200, 400):  # 400: Host refused, but it answers
                return proc, url, port
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError("server did not start")


def _get(url: str, path: str, host: str | None = None, timeout: float = 5.0):
    request = urllib.request.Request(url + path, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _timed_health(url: str) -> float:
    start = time.monotonic()
    status, body = _get(url, "/healthz", timeout=10)
    assert status == 200 and json.loads(body) == {"status": "ok"}
    return time.monotonic() - start


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: closed too
        return True


@pytest.mark.slow
def test_idle_and_endless_connections_under_a_low_fd_limit(model: Path, tmp_path: Path) -> None:
    """300 idle sockets (more than the server's 128 descriptors) and a chunked body that never
    ends: /healthz still answers, both kinds are cut off, the log stays small."""
    log = tmp_path / "server.log"
    proc, url, port = _serve(model, log, "--request-timeout", str(REQUEST_TIMEOUT),
                             fd_limit=FD_LIMIT)  # fmt: skip
    sockets: list[socket.socket] = []
    stop_dribble = threading.Event()
    try:
        endless = socket.create_connection(("127.0.0.1", port), timeout=5)
        endless.sendall(
            b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b"\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
        )
        cut = threading.Event()

        def dribble() -> None:  # one byte every 0.2 s, forever (until the server cuts it)
            while not stop_dribble.wait(0.2):
                try:
                    endless.sendall(b"1\r\n \r\n")
                except OSError:
                    cut.set()
                    return

        threading.Thread(target=dribble, daemon=True).start()
        for _ in range(IDLE):  # a full listen queue makes connect() wait: bounded by timeout
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        opened = time.monotonic()
        assert _timed_health(url) < 2.0
        assert cut.wait(REQUEST_TIMEOUT + 5), "the never-ending body was not cut off"
        # Every idle socket is closed by the server: evicted, or past the request timeout.
        deadline, still = opened + REQUEST_TIMEOUT + 10, sockets
        while time.monotonic() < deadline:
            still = [s for s in sockets if not _closed_by_peer(s)]
            if not still:
                break
            time.sleep(0.25)
        assert not still, f"{len(still)} of {IDLE} idle connections still open"
        assert _timed_health(url) < 1.0
        assert proc.poll() is None
    finally:
        stop_dribble.set()
        for sock in sockets:
            sock.close()
        stop(proc)
    text = log.read_text(errors="replace")
    assert len(text) < 200_000, f"{len(text)} bytes of log"
    assert text.count("Traceback") <= 3, text[-3000:]


@pytest.mark.slow
def test_a_flood_of_max_size_requests_leaves_healthz_fast(model: Path, tmp_path: Path) -> None:
    """200 concurrent num = max_num requests, each retried after a 503's Retry-After until
    served: the generate pool stays saturated for seconds, /healthz answers in under a
    second throughout, and every request is served in the end."""
    proc, url, _ = _serve(model, tmp_path / "server.log", "--max-num", "256")
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            latencies.append(_timed_health(url))
            time.sleep(0.05)

    def generate(_: int) -> tuple[int, int]:
        """(final status, number of 503s before it)."""
        body = json.dumps({"num": 256, "seed": 1}).encode()
        for busy in range(60):
            request = urllib.request.Request(
                url + "/v1/generate", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as reply:
                    reply.read()
                    return reply.status, busy
            except urllib.error.HTTPError as err:
                if err.code != 503:
                    return err.code, busy
                assert err.headers.get("Retry-After") == "1"
                time.sleep(float(err.headers["Retry-After"]))
        return 503, 60

    prober = threading.Thread(target=probe, daemon=True)
    start = time.monotonic()
    try:
        prober.start()
        with ThreadPoolExecutor(max_workers=200) as pool:
            replies = list(pool.map(generate, range(200)))
        done.set()
        prober.join(timeout=15)
    finally:
        done.set()
        stop(proc)
    took = time.monotonic() - start
    assert took < 150
    assert all(status == 200 for status, _ in replies), replies
    assert sum(busy for _, busy in replies) > 0, "the flood never filled the queue"
    assert len(latencies) >= 5 and max(latencies) < 1.0, (
        f"/healthz took up to {max(latencies):.2f} s ({len(latencies)} probes in {took:.1f} s)"
    )


@pytest.mark.slow
def test_host_header_model_bytes_and_a_busy_port(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "served.onnx"
    copy.write_bytes(model.read_bytes())
    proc, url, port = _serve(copy, tmp_path / "server.log")
    try:
        assert _get(url, "/healthz", host=f"localhost:{port}")[0] == 200
        assert _get(url, "/v1/info", host=f"evil.example:{port}")[0] == 400
        assert _get(url, "/model.onnx", host="evil.example")[0] == 400
        # The file is served as checked at start, not read again.
        copy.write_bytes(b"replaced")
        status, body = _get(url, "/model.onnx")
        assert status == 200 and body == model.read_bytes()
        # The port is taken: one line, exit 1, and no "serving" before it.
        result = CliRunner().invoke(
            cli, ["serve", "-m", str(model), "--port", str(port), "--provider", "cpu"]
        )
        out = result.output.strip()
        assert result.exit_code == 1 and out.startswith("error: cannot listen"), out
        assert "serving" not in out and len(out.splitlines()) == 1
    finally:
        stop(proc)
    proc, url, port = _serve(model, tmp_path / "other.log", "--allowed-host", "evil.example")
    try:
        assert _get(url, "/healthz", host=f"evil.example:{port}")[0] == 200
        assert _get(url, "/healthz", host=f"localhost:{port}")[0] == 400
    finally:
        stop(proc)


async def _asgi(app, method: str, path: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request straight to the ASGI app (no sockets)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
    }  # fmt: skip
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # never disconnects
        return {"type": "http.disconnect"}

    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    head = messages[0]
    headers = {k.decode(): v.decode() for k, v in head["headers"]}
    return head["status"], headers, b"".join(m.get("body", b"") for m in messages[1:])


def test_generate_past_max_pending_is_503_and_health_stays_free(model: Path) -> None:
    """While one generate request holds the only slot: the next gets 503 + Retry-After at
    once, /healthz answers; then the first completes."""
    gen = Generator.load(model, "cpu", threads=1)
    entered, release = threading.Event(), threading.Event()
    real = gen.sample

    def blocking(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    gen.sample = blocking  # type: ignore[method-assign]
    api = create_app(gen, max_pending=1, allowed_hosts=["127.0.0.1"])
    body = json.dumps({"num": 4}).encode()

    async def scenario() -> None:
        first = asyncio.create_task(_asgi(api, "POST", "/v1/generate", body))
        for _ in range(300):
            if entered.is_set():
                break
            await asyncio.sleep(0.01)
        assert entered.is_set()
        status, headers, reply = await asyncio.wait_for(_asgi(api, "POST", "/v1/generate", body), 5)
        assert status == 503 and headers.get("retry-after") == "1", (status, reply)
        assert "busy" in json.loads(reply)["error"]
        status, _, _ = await asyncio.wait_for(_asgi(api, "GET", "/healthz"), 1)
        assert status == 200
        release.set()
        status, headers, png = await asyncio.wait_for(first, 30)
        assert status == 200 and headers["content-type"] == "image/png"

    asyncio.run(scenario())


def test_repeated_log_records_are_rate_limited() -> None:
    """An accept() loop failing with EMFILE logs once per interval, not once per attempt."""
    import logging

    from ganforge.inference.serve import RateLimitFilter

    limiter = RateLimitFilter(interval=60)
    records = [
        logging.LogRecord("asyncio", logging.ERROR, __file__, 1,
                          f"socket.accept() out of system resource\nsocket: fd={i}", None, None)
        for i in range(1000)
    ]  # fmt: skip
    assert sum(limiter.filter(r) for r in records) == 1
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", None, None)
    assert limiter.filter(other)
