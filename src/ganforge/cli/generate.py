"""`ganforge generate` and `ganforge interpolate`: samples and latent walks into files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ganforge.cli.common import check_label, check_seed, check_truncation, fail, positive, say
from ganforge.cli.files import (
    MAX_FOLDER,
    MAX_GRID,
    MAX_POINTS,
    STREAM_BATCH,
    check_held,
    check_out_file,
    is_folder,
    stream_to_folder,
    write_failed,
    write_samples,
)
from ganforge.cli.model import load
from ganforge.cli.options import (
    DEFAULT_MODEL,
    ChampionOpt,
    GridOutOpt,
    LabelOpt,
    MethodChoice,
    ModelOpt,
    ProviderChoice,
    ProviderOpt,
    SeedOpt,
    TruncationOpt,
)
from ganforge.inference import Generator, GeneratorInputError, ModelFileError, save_grid

NumOpt = Annotated[
    int,
    typer.Option(
        "--num",
        "-n",
        help=f"Number of samples (a .png grid: up to {MAX_GRID}; a folder: up to "
        f"{MAX_FOLDER}; points: up to {MAX_POINTS}).",
    ),
]
SamplesOutOpt = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="Output: .png grid or a folder (one PNG per image), .csv/.npy (points).",
    ),
]
NrowOpt = Annotated[int | None, typer.Option(help="Images per grid row (default: a square grid).")]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="A folder --out that is not empty: replace its sample_*.png files (other files stay).",
    ),
]
StepsOpt = Annotated[int, typer.Option(help="Images per row, both ends included (>= 2).")]
RowsOpt = Annotated[int, typer.Option(help="Number of walks, each between two random z.")]
MethodOpt = Annotated[
    MethodChoice, typer.Option(help="Path in latent space: linear or slerp (great circle).")
]


def generate(
    model: ModelOpt = DEFAULT_MODEL,
    champion: ChampionOpt = False,
    num: NumOpt = 64,
    seed: SeedOpt = 0,
    out: SamplesOutOpt = Path("samples.png"),
    label: LabelOpt = None,
    truncation: TruncationOpt = 1.0,
    nrow: NrowOpt = None,
    provider: ProviderOpt = ProviderChoice.auto,
    overwrite: OverwriteOpt = False,
) -> None:
    """Draw NUM samples from the generator and write them to OUT."""
    positive(num, "--num")
    check_seed(seed)
    check_truncation(truncation)
    if nrow is not None:
        positive(nrow, "--nrow")
    gen = load(model, provider, champion)
    folder = gen.metadata.is_image and is_folder(out)
    _check_num(gen, num, out, folder)
    check_label(gen, label)  # a bad --label fails before any file is written
    try:
        if folder:
            stream_to_folder(gen, num, seed, label, out, overwrite, truncation)
        else:  # in batches: only the uint8 images are held, not the float outputs of all
            batch = min(STREAM_BATCH, gen.batch_size)
            batches = gen.iter_samples(num, seed, label, batch=batch, truncation=truncation)
            samples = np.concatenate(list(batches))
    except (GeneratorInputError, ModelFileError) as err:
        fail(str(err))
    if not folder:
        write_samples(gen, samples, out, nrow)
    say("wrote {} samples to [bold]{}[/] (seed {}, {})", num, out, seed, gen.providers[0])


def _check_num(gen: Generator, num: int, out: Path, folder: bool) -> None:
    """--num within what OUT can hold; a single file's samples must also fit in memory."""
    if folder:
        limit, what = MAX_FOLDER, f"a folder of PNGs ({out})"
    elif gen.metadata.is_image:
        limit, what = MAX_GRID, "one PNG grid; give --out a folder (e.g. samples/) for more"
    else:
        limit, what = MAX_POINTS, "one points file"
    if num > limit:
        fail(f"--num = {num}: at most {limit} samples go into {what}")
    if not folder:
        check_held(gen, num, "--num")
        check_out_file(out)


def interpolate(
    model: ModelOpt = DEFAULT_MODEL,
    steps: StepsOpt = 8,
    rows: RowsOpt = 4,
    method: MethodOpt = MethodChoice.slerp,
    seed: SeedOpt = 0,
    label: LabelOpt = None,
    truncation: TruncationOpt = 1.0,
    out: GridOutOpt = Path("interp.png"),
    provider: ProviderOpt = ProviderChoice.auto,
) -> None:
    """Walk between random latent points: ROWS rows of STEPS images in one PNG grid."""
    positive(rows, "--rows")
    check_seed(seed)
    check_truncation(truncation)
    if steps < 2:
        fail(f"--steps = {steps}: an interpolation needs at least 2 steps")
    if rows * steps > MAX_GRID:
        fail(f"--rows {rows} x --steps {steps}: at most {MAX_GRID} images go into one grid")
    gen = load(model, provider)
    if not gen.metadata.is_image:
        fail("this generator makes points, not images: interpolate draws image grids")
    if out.suffix.lower() != ".png":
        fail(f"{out}: give --out a .png name")
    check_held(gen, rows * steps, "--rows x --steps")
    check_out_file(out)
    check_label(gen, label)
    try:
        ends = gen.latents(2 * rows, seed=seed, truncation=truncation)
        walks = [
            gen.interpolate(ends[2 * r], ends[2 * r + 1], steps, method.value, labels=label)
            for r in range(rows)
        ]
    except (GeneratorInputError, ModelFileError) as err:
        fail(str(err))
    try:
        save_grid(np.concatenate(walks), out, nrow=steps)
    except OSError as err:
        write_failed(out, err)
    say("wrote {}×{} {} interpolation to [bold]{}[/]", rows, steps, method.value, out)
