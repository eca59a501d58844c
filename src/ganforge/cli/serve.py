"""`ganforge serve`: the generator behind HTTP (ganforge.inference.serve), from the shell."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated

import typer

from ganforge.cli.common import check_port, fail, http_url, positive, say
from ganforge.cli.model import open_generator, resolve
from ganforge.cli.options import (
    DEFAULT_MODEL,
    ChampionOpt,
    ModelOpt,
    ProviderChoice,
    ProviderOpt,
)

if TYPE_CHECKING:  # the server's modules (FastAPI, uvicorn) load only when it starts
    from fastapi import FastAPI

    from ganforge.inference import Generator

HostOpt = Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: all).")]
PortOpt = Annotated[int, typer.Option(help="TCP port (0: any free port).")]
MaxNumOpt = Annotated[int, typer.Option(help="Most samples one request may ask for.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="CPU threads (default: every core); a batch of 2+ samples per thread is split "
        "across them."
    ),
]
AllowedHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-host",
        help="Host header to answer (repeatable; * for any). Default: the --host address, "
        "localhost, 127.0.0.1 and ::1. Other names are refused (no DNS rebinding).",
    ),
]
MaxPendingOpt = Annotated[
    int,
    typer.Option(help="Generate requests in flight at once; more get 503 with Retry-After."),
]
RequestTimeoutOpt = Annotated[
    float,
    typer.Option(help="Seconds a client has to send a request's head and body; then cut off."),
]


def serve(
    model: ModelOpt = DEFAULT_MODEL,
    champion: ChampionOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    max_num: MaxNumOpt = 256,
    threads: ThreadsOpt = None,
    provider: ProviderOpt = ProviderChoice.auto,
    allowed_host: AllowedHostOpt = None,
    max_pending: MaxPendingOpt = 32,
    request_timeout: RequestTimeoutOpt = 10.0,
) -> None:
    """Serve the generator over HTTP: /v1/generate, /v1/info, /healthz, /docs and the page at /."""
    from ganforge.inference.serve import local_hosts, run_server

    _check_options(port, max_num, threads, max_pending, request_timeout)
    model = resolve(model, champion)
    gen = open_generator(model, provider, threads)
    hosts = allowed_host or local_hosts(host)
    api = _app(gen, str(model), max_num, hosts, max_pending)
    sock = _listen(host, port)
    url = http_url(host, sock.getsockname()[1])
    # Printed once the port is ours: a port in use fails above, before any "serving".
    say("serving [bold]{}[/] on {} ({}; Host: {})", model, url, gen.providers[0], ", ".join(hosts))
    run_server(api, sock, request_timeout=request_timeout)


def _check_options(
    port: int, max_num: int, threads: int | None, max_pending: int, request_timeout: float
) -> None:
    """The limits and the port, checked before the model is read."""
    positive(max_num, "--max-num")
    positive(max_pending, "--max-pending")
    if threads is not None:
        positive(threads, "--threads")
    if not 0 < request_timeout <= 3600:
        fail(f"--request-timeout = {request_timeout}: must be in (0, 3600] seconds")
    check_port(port)


def _app(
    gen: Generator, model_path: str, max_num: int, hosts: list[str], max_pending: int
) -> FastAPI:
    """The server's app; a malformed --allowed-host pattern fails with one line."""
    from ganforge.inference.serve import create_app

    try:
        return create_app(
            gen, model_path=model_path, max_num=max_num, allowed_hosts=hosts,
            max_pending=max_pending,
        )  # fmt: skip
    except ValueError as err:
        fail(f"--allowed-host: {err}")


def _listen(host: str, port: int) -> socket.socket:
    """The bound socket; a port in use or an unknown address fails with one line."""
    from ganforge.inference.serve import bind

    try:
        return bind(host, port)
    except OSError as err:
        fail(f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port")
