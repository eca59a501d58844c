"""`ganforge ui` and `ganforge runs`: this repository's trained generators, best FID first."""

from __future__ import annotations

import subprocess
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ganforge.cli import repo
from ganforge.cli.common import check_port, console, fail, http_url, printable, say

UI_STARTUP_S = 120
RUNS_WIDTH = 120

UiPortOpt = Annotated[int, typer.Option(help="Port of the MLflow UI.")]
UiHostOpt = Annotated[
    str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
]
BrowserOpt = Annotated[
    bool, typer.Option("--browser/--no-browser", help="Open the page in a web browser.")
]


def ui(port: UiPortOpt = 5000, host: UiHostOpt = "127.0.0.1", browser: BrowserOpt = True) -> None:
    """Start `mlflow ui` on this repository's runs: sorted by FID, headline columns shown."""
    import webbrowser

    repo.require()
    check_port(port)
    try:
        experiment = repo.mlflow_settings().experiment
        fragment = repo.runs_view(repo.connect(experiment))
    except SystemExit as err:  # a StageError: one line already
        fail(str(err))
    uri = repo.tracking_uri()
    base = http_url(host, port)
    server, log = _start_mlflow_ui(uri, host, port)
    try:
        _wait_until_up(server, log, base, port)
        url = base + fragment
        say("runs of experiment [bold]{}[/] ({}), sorted by FID:", experiment, uri)
        console.print(Text(url), soft_wrap=True)
        if browser:
            webbrowser.open(url)
        say("Ctrl-C stops the server (its log: {}).", log.name)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server)


def _start_mlflow_ui(uri: str, host: str, port: int) -> tuple[subprocess.Popen, IO[str]]:
    """`mlflow ui` on the tracking store, in a child process, and the file its log goes to."""
    import sys
    import tempfile

    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", host, "--port", str(port)]  # fmt: skip
    # The server's own log (uvicorn's request lines, deprecation warnings) goes to a file.
    log = tempfile.NamedTemporaryFile("w+", prefix="mlflow-ui-", suffix=".log", delete=False)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log


def _wait_until_up(server: subprocess.Popen, log: IO[str], base: str, port: int) -> None:
    """Return once the UI answers /health; fail when the server stops or never answers."""
    import time
    import urllib.request

    deadline = time.monotonic() + UI_STARTUP_S
    while True:
        if server.poll() is not None:
            log.seek(0)
            said = [ln for ln in log.read().splitlines() if ln.strip()][-1:] or ["-"]
            fail(
                f"mlflow ui stopped (exit code {server.returncode}; is port {port} free?): "
                f"{said[0][:200]}"
            )
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                fail(f"mlflow ui did not answer on {base} within {UI_STARTUP_S} s")
            time.sleep(0.3)


def _stop(server: subprocess.Popen) -> None:
    """Terminate the UI server if it still runs; kill it if it does not stop in time."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def runs() -> None:
    """List this repository's trained generators, best FID first: scores, changed params,
    the registry's champion (★). Fits 120 columns."""
    repo.require()
    try:
        settings = repo.mlflow_settings()
        repo.connect(settings.experiment)
        keys, rows = repo.runs_rows(settings.experiment, settings.registered_model)
    except SystemExit as err:
        fail(str(err))
    if not rows:
        fail(f"no finished runs in experiment {settings.experiment}: run `./run.sh pipeline` first")
    out = Console(width=min(console.width, RUNS_WIDTH))
    shown = keys[:4]  # what fits beside the scores in 120 columns
    out.print(_runs_table(settings.experiment, rows, shown))
    if len(keys) > len(shown):
        out.print(Text(f"also changed: {', '.join(keys[len(shown) :])}"), highlight=False)
    out.print(Text("★ the registry's champion; `ganforge ui` opens the same runs in MLflow"))


def _runs_table(experiment: str, rows: list[dict[str, Any]], shown: list[str]) -> Table:
    """One row per run: name (★ the champion), the headline scores, the `shown` params."""
    columns = repo.runs_columns()
    count = f"{len(rows)} run{'s' * (len(rows) != 1)}"
    table = Table(title=Text(f"{experiment}: {count}, best FID first"))
    table.add_column("run", overflow="ellipsis", no_wrap=True, max_width=28)
    for _, title, _ in columns:
        table.add_column(title, justify="right", no_wrap=True)
    for key in shown:
        table.add_column(
            key.removeprefix("train."), overflow="ellipsis", no_wrap=True, max_width=14
        )
    for row in rows:
        cells = [Text(("★ " if row["champion"] else "  ") + printable(row["name"], 40))]
        for metric, _, fmt in columns:
            value = row["metrics"].get(metric)
            cells.append(Text("-" if value is None else fmt.format(value)))
        cells += [Text(printable(row["params"][k], 40)) for k in shown]
        table.add_row(*cells)
    return table
