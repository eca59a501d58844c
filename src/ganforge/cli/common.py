"""What every command shares: terminal output that no file can spoof, and argument checks."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ganforge.inference import Generator, GeneratorInputError
from ganforge.inference.generator import NO_CLASSES

console = Console()
err_console = Console(stderr=True)


def printable(text: object, limit: int | None = None) -> str:
    """`text` safe for a terminal: control and format characters (escape sequences, bidi
    overrides) shown as `\\x1b`-style escapes; cut to `limit` characters when given."""
    text = str(text)
    more = 0
    if limit is not None and len(text) > limit:
        text, more = text[:limit], len(text) - limit
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return f"{shown}... ({more} more characters)" if more else shown


def say(markup: str, *values: object) -> None:
    """Print `markup` with `values` (paths, names) filled in as plain, escaped text."""
    console.print(markup.format(*(escape(printable(v)) for v in values)), highlight=False)


def fail(message: str) -> NoReturn:
    """Print `message` as one error line on stderr and exit with status 1."""
    text = escape(printable(message, 2000))
    err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def positive(value: int, option: str) -> None:
    """Fail unless `option`'s `value` is 1 or more."""
    if value < 1:
        fail(f"{option} = {value}: must be a positive integer")


def check_seed(seed: int) -> None:
    """Fail on a negative --seed."""
    if seed < 0:
        fail(f"--seed = {seed}: must be 0 or more (numpy seeds are non-negative)")


def check_truncation(truncation: float) -> None:
    """Fail unless --truncation lies in (0, 1]."""
    if not 0.0 < truncation <= 1.0:
        fail(f"--truncation = {truncation}: must be in (0, 1] (1 = none)")


def check_port(port: int) -> None:
    """Fail unless --port is a TCP port number (0: any free one)."""
    if not 0 <= port <= 65535:
        fail(f"--port = {port}: must be in 0..65535")


def check_label(gen: Generator, label: int | None) -> None:
    """--label must name a class of a model that has classes (before any file is written)."""
    if label is not None and not gen.metadata.has_classes:
        fail(f"--label {label}: {NO_CLASSES}; drop --label")
    try:
        gen.labels_for(1, label)
    except GeneratorInputError as err:
        fail(f"--label: {err}")


def http_url(host: str, port: int) -> str:
    """The URL of host:port (an IPv6 address in brackets)."""
    return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
