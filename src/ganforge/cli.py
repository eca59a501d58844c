"""`ganforge`: use an exported generator (generate, interpolate, info) from the shell.

Only `ganforge.inference` is imported at the top: the commands that serve an ONNX model start
fast and never load torch.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ganforge.inference import (
    Generator,
    GeneratorInputError,
    ModelFileError,
    ProviderError,
    save_grid,
)
from ganforge.inference.generator import NO_CLASSES
from ganforge.inference.grid import png_bytes
from ganforge.inference.metadata import ModelMetadata
from ganforge.io import atomic_path

app = typer.Typer(
    name="ganforge",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Sample, interpolate and inspect ganforge generators exported to ONNX.",
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_MODEL = Path("models/generator.onnx")

# Bounds on one request, so that no --num can exhaust memory or write an unusable file.
# One PNG grid holds at most MAX_GRID images (64 x 64 tiles: 2 114 px square at 32 px);
# more go to a folder, one PNG each, generated STREAM_BATCH at a time (bounded memory).
MAX_GRID = 4096
MAX_FOLDER = 1_000_000
MAX_POINTS = 1_000_000  # toy generators: rows of a .csv / .npy (held in memory: 8 MB in 2-D)
STREAM_BATCH = 256
# Bytes of the images one grid holds in memory (large samples: fewer per grid).
MAX_GRID_BYTES = 256 * 1024 * 1024
# `info`: text shown per metadata value, and the most extra metadata entries listed.
INFO_VALUE_CHARS = 2000
INFO_EXTRA_ROWS = 100
SAMPLE_NAME = re.compile(r"sample_\d{7}\.png")


class ProviderChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class MethodChoice(StrEnum):
    linear = "linear"
    slerp = "slerp"


ModelOpt = Annotated[
    Path,
    typer.Option(
        "--model",
        "-m",
        help="Exported generator to load: an .onnx file, or a registered MLflow model of "
        "this repository's store (models:/ganforge-generator@champion, runs:/<id>/generator_onnx).",
    ),
]
ChampionOpt = Annotated[
    bool,
    typer.Option(
        "--champion",
        help="Load the registry's champion (models:/<mlflow.registered_model>@champion) "
        "instead of --model: what the workspace holds after `dvc exp run` may be a "
        "challenger.",
    ),
]
MLFLOW_URIS = ("models:/", "runs:/")
ProviderOpt = Annotated[
    ProviderChoice,
    typer.Option(help="onnxruntime provider: auto (CUDA only where it works), cpu or cuda."),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the latent vectors (same seed, same output).")]
LabelOpt = Annotated[
    int | None,
    typer.Option(
        help="Class to generate, for models with classes (conditional or latent-class). "
        "Default: a conditional model cycles through its classes, a latent-class model "
        "draws them from the latents."
    ),
]
TruncationOpt = Annotated[
    float,
    typer.Option(
        help="Truncation ψ in (0, 1]: latents scaled toward 0, fewer odd samples and less "
        "variety; 1 = none."
    ),
]


def printable(text: object, limit: int | None = None) -> str:
    """`text` safe for a terminal: control and format characters (escape sequences, bidi
    overrides) shown as `\\x1b`-style escapes; cut to `limit` characters when given."""
    text = str(text)
    more = 0
    if limit is not None and len(text) > limit:
        text, more = text[:limit], len(text) - limit
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return f"{shown}... ({more} more characters)" if more else shown


def _say(markup: str, *values: object) -> None:
    """Print `markup` with `values` (paths, names) filled in as plain, escaped text."""
    console.print(markup.format(*(escape(printable(v)) for v in values)), highlight=False)


def _fail(message: str) -> NoReturn:
    text = escape(printable(message, 2000))
    err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _registered(model: Path, champion: bool) -> Path:
    """--model as a local .onnx path: an MLflow model URI (or --champion) is downloaded from
    this repository's tracking store; a plain path is returned as it is."""
    text = str(model).replace(":/" + "/", ":/")  # typer's Path keeps models:/..., not models://
    if champion:
        params = _pipeline_module("params")
        name = params.load_params().mlflow.registered_model
        if not name:
            _fail("--champion: params.yaml sets no mlflow.registered_model, so there is none")
        text = f"models:/{name}@champion"
    if not text.startswith(MLFLOW_URIS):
        return model
    common = _pipeline_module("common")
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = common.tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except MlflowException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        _fail(f"{text}: {first} (tracking store {uri}; run `./run.sh pipeline` first)")
    found = [local] if local.suffix == ".onnx" else sorted(local.rglob("*.onnx"))
    if not found:
        _fail(f"{text}: the MLflow model holds no .onnx file")
    _say("loading {} ({})", text, found[0])
    return found[0]


def _load(model: Path, provider: ProviderChoice, champion: bool = False) -> Generator:
    model = _registered(model, champion)
    if model == DEFAULT_MODEL and not model.exists() and not model.is_symlink():
        _fail(f"{model}: no such model file (run `./run.sh pipeline` first: it writes it)")
    try:
        return Generator.load(model, provider=provider.value)
    except (ModelFileError, ProviderError) as err:
        _fail(str(err))


def _positive(value: int, option: str) -> None:
    if value < 1:
        _fail(f"{option} = {value}: must be a positive integer")


def _check_label(gen: Generator, label: int | None) -> None:
    """--label must name a class of a model that has classes (before any file is written)."""
    if label is not None and not gen.metadata.has_classes:
        _fail(f"--label {label}: {NO_CLASSES}; drop --label")
    try:
        gen.labels_for(1, label)
    except GeneratorInputError as err:
        _fail(f"--label: {err}")


def _check_truncation(truncation: float) -> None:
    if not 0.0 < truncation <= 1.0:
        _fail(f"--truncation = {truncation}: must be in (0, 1] (1 = none)")


def _check_seed(seed: int) -> None:
    if seed < 0:
        _fail(f"--seed = {seed}: must be 0 or more (numpy seeds are non-negative)")


def _check_out_file(out: Path) -> None:
    """Fail before any work when OUT cannot be written (missing or read-only folder)."""
    folder = out.parent
    if out.is_dir():
        _fail(f"--out {out} is a folder: give a file name (or a new folder for one PNG each)")
    if not folder.is_dir():
        _fail(f"--out {out}: folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK):
        _fail(f"--out {out}: folder {folder} is not writable; choose a path you can write")


def _write_failed(out: Path, err: OSError) -> NoReturn:
    _fail(f"cannot write {out} ({err.strerror or err}): choose a path in a writable folder")


def _check_held(gen: Generator, num: int, what: str) -> None:
    """NUM samples held at once (one grid, one points file) must fit in MAX_GRID_BYTES."""
    each = gen.metadata.sample_values * (1 if gen.metadata.is_image else 4)
    if num * each > MAX_GRID_BYTES:
        most = max(1, MAX_GRID_BYTES // each)
        _fail(
            f"{what} = {num}: samples of {list(gen.metadata.sample_shape)} fit at most {most} "
            f"to one file ({MAX_GRID_BYTES // 2**20} MiB); give --out a folder for more"
        )


def _is_folder(out: Path) -> bool:
    """--out names a folder (one PNG per image) when it has no suffix or is a folder."""
    return out.is_dir() or out.suffix == ""


def _write_samples(gen: Generator, samples: np.ndarray, out: Path, nrow: int | None) -> None:
    """One grid or points file, written by the atomic writer (a planted link is replaced)."""
    if gen.metadata.is_image:
        if out.suffix.lower() != ".png":
            _fail(f"{out}: images are written as a PNG grid; give --out a .png name")
        try:
            save_grid(samples, out, nrow=nrow)
        except OSError as err:
            _write_failed(out, err)
        return
    # Toy point generators: the points themselves, one row each.
    suffix = out.suffix.lower()
    if suffix not in (".npy", ".csv"):
        _fail(f"{out}: this generator makes points, not images; give --out a .csv or .npy name")
    try:
        with atomic_path(out) as tmp, tmp.open("wb") as fh:
            if suffix == ".npy":
                np.save(fh, samples)
            else:
                header = ",".join(f"x{i}" for i in range(samples.shape[1]))
                np.savetxt(fh, samples, delimiter=",", header=header, comments="")
    except OSError as err:
        _write_failed(out, err)


def _prepare_folder(out: Path, overwrite: bool) -> None:
    """OUT must be new or empty; --overwrite clears only the sample_NNNNNNN.png files in it."""
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} is a file: give a new folder name, or a .png name for one grid")
    if not out.is_dir():
        return
    try:
        entries = list(out.iterdir())
        ours = [e for e in entries if SAMPLE_NAME.fullmatch(e.name)]
        if entries and not overwrite:
            _fail(
                f"--out {out} is a folder that already holds {len(entries)} entries: choose a "
                "new folder, or pass --overwrite to replace its sample_*.png files"
            )
        for entry in ours:  # a link is removed itself, never followed
            entry.unlink()
    except OSError as err:
        _write_failed(out, err)


def _stream_to_folder(
    gen: Generator,
    num: int,
    seed: int,
    label: int | None,
    out: Path,
    overwrite: bool,
    truncation: float = 1.0,
) -> None:
    """NUM images as OUT/sample_NNNNNNN.png, a batch at a time (memory: one batch).

    Each file goes through the atomic writer: a planted link named like a sample is
    replaced by the new file, never written through.
    """
    _prepare_folder(out, overwrite)
    batch_size = min(STREAM_BATCH, gen.batch_size)
    try:
        out.mkdir(parents=True, exist_ok=True)
        index = 0
        batches = gen.iter_samples(num, seed, label, batch=batch_size, truncation=truncation)
        for batch in batches:
            for image in batch:
                with atomic_path(out / f"sample_{index:07d}.png") as tmp:
                    tmp.write_bytes(png_bytes(image))
                index += 1
    except OSError as err:
        _write_failed(out, err)


@app.command()
def generate(
    model: ModelOpt = DEFAULT_MODEL,
    champion: ChampionOpt = False,
    num: Annotated[
        int,
        typer.Option(
            "--num",
            "-n",
            help=f"Number of samples (a .png grid: up to {MAX_GRID}; a folder: up to "
            f"{MAX_FOLDER}; points: up to {MAX_POINTS}).",
        ),
    ] = 64,
    seed: SeedOpt = 0,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output: .png grid or a folder (one PNG per image), .csv/.npy (points).",
        ),
    ] = Path("samples.png"),
    label: LabelOpt = None,
    truncation: TruncationOpt = 1.0,
    nrow: Annotated[
        int | None, typer.Option(help="Images per grid row (default: a square grid).")
    ] = None,
    provider: ProviderOpt = ProviderChoice.auto,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="A folder --out that is not empty: replace its sample_*.png files "
            "(other files stay).",
        ),
    ] = False,
) -> None:
    """Draw NUM samples from the generator and write them to OUT."""
    _positive(num, "--num")
    _check_seed(seed)
    _check_truncation(truncation)
    if nrow is not None:
        _positive(nrow, "--nrow")
    gen = _load(model, provider, champion)
    folder = gen.metadata.is_image and _is_folder(out)
    if folder:
        limit, what = MAX_FOLDER, f"a folder of PNGs ({out})"
    elif gen.metadata.is_image:
        limit, what = MAX_GRID, "one PNG grid; give --out a folder (e.g. samples/) for more"
    else:
        limit, what = MAX_POINTS, "one points file"
    if num > limit:
        _fail(f"--num = {num}: at most {limit} samples go into {what}")
    if not folder:
        _check_held(gen, num, "--num")
        _check_out_file(out)
    _check_label(gen, label)  # a bad --label fails before any file is written
    try:
        if folder:
            _stream_to_folder(gen, num, seed, label, out, overwrite, truncation)
        else:  # in batches: only the uint8 images are held, not the float outputs of all
            batch = min(STREAM_BATCH, gen.batch_size)
            batches = gen.iter_samples(num, seed, label, batch=batch, truncation=truncation)
            samples = np.concatenate(list(batches))
    except (GeneratorInputError, ModelFileError) as err:
        _fail(str(err))
    if not folder:
        _write_samples(gen, samples, out, nrow)
    _say("wrote {} samples to [bold]{}[/] (seed {}, {})", num, out, seed, gen.providers[0])


@app.command()
def interpolate(
    model: ModelOpt = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(help="Images per row, both ends included (>= 2).")] = 8,
    rows: Annotated[int, typer.Option(help="Number of walks, each between two random z.")] = 4,
    method: Annotated[
        MethodChoice, typer.Option(help="Path in latent space: linear or slerp (great circle).")
    ] = MethodChoice.slerp,
    seed: SeedOpt = 0,
    label: LabelOpt = None,
    truncation: TruncationOpt = 1.0,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG grid to write.")] = Path(
        "interp.png"
    ),
    provider: ProviderOpt = ProviderChoice.auto,
) -> None:
    """Walk between random latent points: ROWS rows of STEPS images in one PNG grid."""
    _positive(rows, "--rows")
    _check_seed(seed)
    _check_truncation(truncation)
    if steps < 2:
        _fail(f"--steps = {steps}: an interpolation needs at least 2 steps")
    if rows * steps > MAX_GRID:
        _fail(f"--rows {rows} x --steps {steps}: at most {MAX_GRID} images go into one grid")
    gen = _load(model, provider)
    if not gen.metadata.is_image:
        _fail("this generator makes points, not images: interpolate draws image grids")
    if out.suffix.lower() != ".png":
        _fail(f"{out}: give --out a .png name")
    _check_held(gen, rows * steps, "--rows x --steps")
    _check_out_file(out)
    _check_label(gen, label)
    try:
        ends = gen.latents(2 * rows, seed=seed, truncation=truncation)
        walks = [
            gen.interpolate(ends[2 * r], ends[2 * r + 1], steps, method.value, labels=label)
            for r in range(rows)
        ]
    except (GeneratorInputError, ModelFileError) as err:
        _fail(str(err))
    try:
        save_grid(np.concatenate(walks), out, nrow=steps)
    except OSError as err:
        _write_failed(out, err)
    _say("wrote {}×{} {} interpolation to [bold]{}[/]", rows, steps, method.value, out)


def _classes_line(meta: ModelMetadata) -> str:
    """How the model takes a class, in words (`info`)."""
    if meta.conditional:
        return f"{meta.num_classes}, conditional (a label input; --label picks one)"
    if meta.latent_class:
        return f"{meta.num_classes}, drawn from z₀ (latent-class; --label places z₀ in one)"
    return "none (no --label)"


@app.command()
def info(
    model: ModelOpt = DEFAULT_MODEL,
    provider: ProviderOpt = ProviderChoice.cpu,
) -> None:
    """Show what the exported generator says about itself (its ONNX metadata)."""
    gen = _load(model, provider)
    meta = gen.metadata
    # Every key and value comes from the file: plain Text (no markup, no links), control
    # characters escaped, long values cut, so that any metadata prints at once and as it is.
    table = Table(title=Text(printable(model)), show_header=True, header_style="bold")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    rows = {
        "arch": meta.arch,
        "kind": "image" if meta.is_image else "points",
        "nz": meta.nz,
        "sample shape": list(meta.sample_shape),
        "channels": meta.channels,
        "image size": meta.image_size,
        "value range": list(meta.value_range) if meta.value_range else "unbounded",
        "classes": _classes_line(meta),
        "class names": ", ".join(meta.class_names) or "-",
        "inputs": ", ".join(i.name for i in gen.session.get_inputs()),
        "output": gen.session.get_outputs()[0].name,
        "weights": meta.weights,
        "mlflow run": meta.mlflow_run_id or "-",
        "dataset hash": meta.dataset_hash or "-",
        "ganforge version": meta.ganforge_version,
        "providers": ", ".join(gen.providers),
    }
    extra = sorted(meta.extra.items())
    rows.update(extra[:INFO_EXTRA_ROWS])
    if len(extra) > INFO_EXTRA_ROWS:
        rows["..."] = f"{len(extra) - INFO_EXTRA_ROWS} more metadata entries not shown"
    for key, value in rows.items():
        if value is not None:
            table.add_row(Text(printable(key, 200)), Text(printable(value, INFO_VALUE_CHARS)))
    console.print(table)


@app.command()
def serve(
    model: ModelOpt = DEFAULT_MODEL,
    champion: ChampionOpt = False,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8000,
    max_num: Annotated[int, typer.Option(help="Most samples one request may ask for.")] = 256,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads (default: every core); a batch of 2+ samples per thread is split "
            "across them."
        ),
    ] = None,
    provider: ProviderOpt = ProviderChoice.auto,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Host header to answer (repeatable; * for any). Default: the --host address, "
            "localhost, 127.0.0.1 and ::1. Other names are refused (no DNS rebinding).",
        ),
    ] = None,
    max_pending: Annotated[
        int,
        typer.Option(help="Generate requests in flight at once; more get 503 with Retry-After."),
    ] = 32,
    request_timeout: Annotated[
        float,
        typer.Option(help="Seconds a client has to send a request's head and body; then cut off."),
    ] = 10.0,
) -> None:
    """Serve the generator over HTTP: /v1/generate, /v1/info, /healthz, /docs and the page at /."""
    from ganforge.inference.serve import bind, create_app, local_hosts, run_server

    _positive(max_num, "--max-num")
    _positive(max_pending, "--max-pending")
    if threads is not None:
        _positive(threads, "--threads")
    if not 0 < request_timeout <= 3600:
        _fail(f"--request-timeout = {request_timeout}: must be in (0, 3600] seconds")
    if not 0 <= port <= 65535:
        _fail(f"--port = {port}: must be in 0..65535")
    model = _registered(model, champion)
    if not model.exists() and not model.is_symlink() and model == DEFAULT_MODEL:
        _fail(f"{model}: no such model file (run `./run.sh pipeline` first: it writes it)")
    try:
        gen = Generator.load(model, provider=provider.value, threads=threads)
    except (ModelFileError, ProviderError) as err:
        _fail(str(err))
    hosts = allowed_host or local_hosts(host)
    try:
        api = create_app(
            gen, model_path=str(model), max_num=max_num, allowed_hosts=hosts,
            max_pending=max_pending,
        )  # fmt: skip
    except ValueError as err:
        _fail(f"--allowed-host: {err}")
    try:
        sock = bind(host, port)
    except OSError as err:
        _fail(f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port")
    bound = sock.getsockname()[1]
    url = f"http://{host}:{bound}" if ":" not in host else f"http://[{host}]:{bound}"
    # Printed once the port is ours: a port in use fails above, before any "serving".
    _say("serving [bold]{}[/] on {} ({}; Host: {})", model, url, gen.providers[0], ", ".join(hosts))
    run_server(api, sock, request_timeout=request_timeout)


def _pipeline_module(name: str) -> ModuleType:
    """A module of the repository's `pipeline/` (the CLI runs in the repository root)."""
    import importlib
    import sys

    try:
        return importlib.import_module(f"pipeline.{name}")
    except ModuleNotFoundError:
        if not (Path.cwd() / "pipeline" / "common.py").is_file():
            _fail("run this in the ganforge repository's root (where dvc.yaml and pipeline/ are)")
    sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(f"pipeline.{name}")


UI_STARTUP_S = 120


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the page in a web browser.")
    ] = True,
) -> None:
    """Start `mlflow ui` on this repository's runs: sorted by FID, headline columns shown."""
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.request
    import webbrowser

    common = _pipeline_module("common")
    params = _pipeline_module("params")
    if not 0 <= port <= 65535:
        _fail(f"--port = {port}: must be in 0..65535")
    try:
        experiment = params.load_params().mlflow.experiment
        experiment_id = common.connect(experiment)
        fragment = common.runs_view(experiment_id)
    except SystemExit as err:  # a StageError: one line already
        _fail(str(err))
    uri = common.tracking_uri()
    base = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", host, "--port", str(port)]  # fmt: skip
    # The server's own log (uvicorn's request lines, deprecation warnings) goes to a file.
    log = tempfile.NamedTemporaryFile("w+", prefix="mlflow-ui-", suffix=".log", delete=False)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + UI_STARTUP_S
        while True:
            if server.poll() is not None:
                log.seek(0)
                said = [ln for ln in log.read().splitlines() if ln.strip()][-1:] or ["-"]
                _fail(
                    f"mlflow ui stopped (exit code {server.returncode}; is port {port} free?): "
                    f"{said[0][:200]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    _fail(f"mlflow ui did not answer on {base} within {UI_STARTUP_S} s")
                time.sleep(0.3)
        url = base + fragment
        _say("runs of experiment [bold]{}[/] ({}), sorted by FID:", experiment, uri)
        console.print(Text(url), soft_wrap=True)
        if browser:
            webbrowser.open(url)
        _say("Ctrl-C stops the server (its log: {}).", log.name)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


RUNS_WIDTH = 120


@app.command()
def runs() -> None:
    """List this repository's trained generators, best FID first: scores, changed params,
    the registry's champion (★). Fits 120 columns."""
    common = _pipeline_module("common")
    params = _pipeline_module("params")
    try:
        settings = params.load_params().mlflow
        common.connect(settings.experiment)
        keys, rows = common.runs_rows(settings.experiment, settings.registered_model)
    except SystemExit as err:
        _fail(str(err))
    if not rows:
        _fail(
            f"no finished runs in experiment {settings.experiment}: run `./run.sh pipeline` first"
        )
    out = Console(width=min(console.width, RUNS_WIDTH))
    count = f"{len(rows)} run{'s' * (len(rows) != 1)}"
    table = Table(title=Text(f"{settings.experiment}: {count}, best FID first"))
    table.add_column("run", overflow="ellipsis", no_wrap=True, max_width=28)
    for _, title, _ in common.RUNS_COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    shown = keys[:4]  # what fits beside the scores in 120 columns
    for key in shown:
        table.add_column(
            key.removeprefix("train."), overflow="ellipsis", no_wrap=True, max_width=14
        )
    for row in rows:
        cells = [Text(("★ " if row["champion"] else "  ") + printable(row["name"], 40))]
        for metric, _, fmt in common.RUNS_COLUMNS:
            value = row["metrics"].get(metric)
            cells.append(Text("-" if value is None else fmt.format(value)))
        cells += [Text(printable(row["params"][k], 40)) for k in shown]
        table.add_row(*cells)
    out.print(table)
    if len(keys) > len(shown):
        out.print(Text(f"also changed: {', '.join(keys[len(shown) :])}"), highlight=False)
    out.print(Text("★ the registry's champion; `ganforge ui` opens the same runs in MLflow"))


class _Command(typer.core.TyperCommand):
    """A command whose --help lists no value type for flags (`--help`, `--overwrite`)."""

    def get_help_option(self, ctx):  # type: ignore[no-untyped-def]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def get_params(self, ctx):  # type: ignore[no-untyped-def]
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class _Group(typer.core.TyperGroup):
    def get_help_option(self, ctx):  # type: ignore[no-untyped-def]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


app.info.cls = _Group
for _command_info in app.registered_commands:
    _command_info.cls = _Command


if __name__ == "__main__":
    app()
