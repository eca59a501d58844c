"""A ganforge server process on loopback for the tests (started with bounded waits)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`ganforge serve` in its own process; returns it once /healthz answers (bounded wait)."""
    port = free_port()
    cmd = [sys.executable, "-m", "ganforge.cli", "serve", "--model", str(model),
           "--host", "127.0.0.1", "--port", str(port), "--provider", "cpu", *extra]  # fmt: skip
    return start_process(cmd, f"http://127.0.0.1:{port}", "/healthz")


def start_process(
    cmd: list[str], url: str, probe: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start `cmd`; return (process, url) once GET url+probe answers 200 (bounded wait)."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    # A file, not a pipe: nobody reads the server's log while it runs, and a full pipe would
    # block it.
    log = tempfile.TemporaryFile()
    # Its own process group, so that `stop` also ends the workers it spawns (mlflow's uvicorn).
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}{probe}", timeout=2) as reply:
                if reply.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"server did not answer {probe} within {STARTUP_S} s: {cmd[:4]}")


def stop(proc: subprocess.Popen) -> None:
    """End the server started by `start_process` and the group of processes it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def call(url: str, path: str, body: dict | bytes | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET (body None) or a JSON POST."""
    data = body if isinstance(body, bytes | type(None)) else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.headers.get("content-type", ""), reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("content-type", ""), err.read()


def export_models(
    out: Path,
    specs: dict,
    *,
    extra: dict | None = None,
    opset: int = 18,
    wide_init: bool = True,
) -> dict[str, Path]:
    """Export one untrained generator per spec, by default with weights spread wider than DCGAN's.

    N(0, 0.02) weights make an untrained DCGAN draw flat grey images, in which a wrong pixel
    would hide; He-like weights give varied images that a comparison can trust. `extra` is the
    metadata beside the spec's (weights "raw" when None); `wide_init=False` keeps DCGAN's init.
    """
    import torch

    from ganforge.export import build_metadata, export_generator
    from ganforge.models import build_generator

    torch.manual_seed(0)
    paths = {}
    for name, spec in specs.items():
        generator = build_generator(spec).eval()
        for module in generator.modules():
            if wide_init and isinstance(module, torch.nn.ConvTranspose2d):
                torch.nn.init.normal_(module.weight, 0.0, (2.0 / (module.in_channels * 4)) ** 0.5)
        meta = build_metadata(spec, {"weights": "raw"} if extra is None else extra)
        path = out / f"{name}.onnx"
        paths[name] = export_generator(generator, spec, path, opset=opset, metadata=meta)
    return paths
