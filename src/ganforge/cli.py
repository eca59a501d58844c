"""`ganforge`: use an exported generator (generate, interpolate, info) from the shell.

Only `ganforge.inference` is imported at the top: the commands that serve an ONNX model start
fast and never load torch.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ganforge.inference import (
    Generator,
    GeneratorInputError,
    ModelFileError,
    ProviderError,
    save_grid,
)

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


class ProviderChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class MethodChoice(StrEnum):
    linear = "linear"
    slerp = "slerp"


ModelOpt = Annotated[
    Path, typer.Option("--model", "-m", help="Exported generator (.onnx) to load.")
]
ProviderOpt = Annotated[
    ProviderChoice,
    typer.Option(help="onnxruntime provider: auto (CUDA only where it works), cpu or cuda."),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the latent vectors (same seed, same output).")]
LabelOpt = Annotated[
    int | None,
    typer.Option(help="Class to generate (conditional models only; default: cycle classes)."),
]


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _load(model: Path, provider: ProviderChoice) -> Generator:
    try:
        return Generator.load(model, provider=provider.value)
    except (ModelFileError, ProviderError) as err:
        _fail(str(err))


def _positive(value: int, option: str) -> None:
    if value < 1:
        _fail(f"{option} = {value}: must be a positive integer")


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


def _is_folder(out: Path) -> bool:
    """--out names a folder (one PNG per image) when it has no suffix or is a folder."""
    return out.is_dir() or out.suffix == ""


def _write_samples(gen: Generator, samples: np.ndarray, out: Path, nrow: int | None) -> None:
    if gen.metadata.is_image:
        if out.suffix.lower() != ".png":
            _fail(f"{out}: images are written as a PNG grid; give --out a .png name")
        try:
            save_grid(samples, out, nrow=nrow)
        except OSError as err:
            _write_failed(out, err)
        return
    # Toy point generators: the points themselves, one row each.
    try:
        if out.suffix.lower() == ".npy":
            np.save(out, samples)
        elif out.suffix.lower() == ".csv":
            header = ",".join(f"x{i}" for i in range(samples.shape[1]))
            np.savetxt(out, samples, delimiter=",", header=header, comments="")
        else:
            _fail(f"{out}: this generator makes points, not images; give --out a .csv or .npy name")
    except OSError as err:
        _write_failed(out, err)


def _stream_to_folder(gen: Generator, num: int, seed: int, label: int | None, out: Path) -> None:
    """NUM images as OUT/sample_NNNNNNN.png, STREAM_BATCH at a time (memory: one batch)."""
    from PIL import Image

    try:
        out.mkdir(parents=True, exist_ok=True)
        index = 0
        for batch in gen.iter_samples(num, seed=seed, labels=label, batch=STREAM_BATCH):
            for image in batch:
                picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
                picture.save(out / f"sample_{index:07d}.png", format="PNG")
                index += 1
    except OSError as err:
        _write_failed(out, err)


@app.command()
def generate(
    model: ModelOpt = DEFAULT_MODEL,
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
    nrow: Annotated[
        int | None, typer.Option(help="Images per grid row (default: a square grid).")
    ] = None,
    provider: ProviderOpt = ProviderChoice.auto,
) -> None:
    """Draw NUM samples from the generator and write them to OUT."""
    _positive(num, "--num")
    _check_seed(seed)
    if nrow is not None:
        _positive(nrow, "--nrow")
    gen = _load(model, provider)
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
        _check_out_file(out)
    try:
        if folder:
            _stream_to_folder(gen, num, seed, label, out)
        else:  # in batches: only the uint8 images are held, not the float outputs of all
            batches = gen.iter_samples(num, seed=seed, labels=label, batch=STREAM_BATCH)
            samples = np.concatenate(list(batches))
    except (GeneratorInputError, ModelFileError) as err:
        _fail(str(err))
    if not folder:
        _write_samples(gen, samples, out, nrow)
    console.print(
        f"wrote {num} samples to [bold]{out}[/] (seed {seed}, {gen.providers[0]})",
        highlight=False,
    )


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
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG grid to write.")] = Path(
        "interp.png"
    ),
    provider: ProviderOpt = ProviderChoice.auto,
) -> None:
    """Walk between random latent points: ROWS rows of STEPS images in one PNG grid."""
    _positive(rows, "--rows")
    _check_seed(seed)
    if steps < 2:
        _fail(f"--steps = {steps}: an interpolation needs at least 2 steps")
    if rows * steps > MAX_GRID:
        _fail(f"--rows {rows} x --steps {steps}: at most {MAX_GRID} images go into one grid")
    gen = _load(model, provider)
    if not gen.metadata.is_image:
        _fail("this generator makes points, not images: interpolate draws image grids")
    if out.suffix.lower() != ".png":
        _fail(f"{out}: give --out a .png name")
    _check_out_file(out)
    try:
        ends = gen.latents(2 * rows, seed=seed)
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
    console.print(
        f"wrote {rows}×{steps} {method.value} interpolation to [bold]{out}[/]", highlight=False
    )


@app.command()
def info(
    model: ModelOpt = DEFAULT_MODEL,
    provider: ProviderOpt = ProviderChoice.cpu,
) -> None:
    """Show what the exported generator says about itself (its ONNX metadata)."""
    gen = _load(model, provider)
    meta = gen.metadata
    table = Table(title=str(model), show_header=True, header_style="bold")
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
        "classes": meta.num_classes or "unconditional",
        "class names": ", ".join(meta.class_names) or "-",
        "inputs": ", ".join(i.name for i in gen.session.get_inputs()),
        "output": gen.session.get_outputs()[0].name,
        "weights": meta.weights,
        "mlflow run": meta.mlflow_run_id or "-",
        "dataset hash": meta.dataset_hash or "-",
        "ganforge version": meta.ganforge_version,
        "providers": ", ".join(gen.providers),
    }
    rows.update(meta.extra)
    for key, value in rows.items():
        if value is not None:
            table.add_row(key, str(value))
    console.print(table)


@app.command()
def serve(
    model: ModelOpt = DEFAULT_MODEL,
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
) -> None:
    """Serve the generator over HTTP: /v1/generate, /v1/info, /healthz, /docs and the page at /."""
    import uvicorn

    from ganforge.inference.serve import create_app

    _positive(max_num, "--max-num")
    if threads is not None:
        _positive(threads, "--threads")
    if not 0 <= port <= 65535:
        _fail(f"--port = {port}: must be in 0..65535")
    try:
        gen = Generator.load(model, provider=provider.value, threads=threads)
    except (ModelFileError, ProviderError) as err:
        _fail(str(err))
    api = create_app(gen, model_path=str(model), max_num=max_num)
    console.print(f"serving [bold]{model}[/] on http://{host}:{port} ({gen.providers[0]})",
                  highlight=False)  # fmt: skip
    try:
        uvicorn.run(api, host=host, port=port, log_level="info")
    except OSError as err:
        _fail(f"cannot listen on {host}:{port}: {err.strerror or err}")


if __name__ == "__main__":
    app()
