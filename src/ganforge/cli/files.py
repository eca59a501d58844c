"""Where samples go: one PNG grid, a folder of PNGs or a points file, checked before any work.

Every file goes through the atomic writer: a planted link is replaced, never written through.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NoReturn

import numpy as np

from ganforge.cli.common import fail
from ganforge.inference import Generator, save_grid
from ganforge.inference.grid import png_bytes
from ganforge.io import atomic_path

# Bounds on one request, so that no --num can exhaust memory or write an unusable file.
# One PNG grid holds at most MAX_GRID images (64 x 64 tiles: 2 114 px square at 32 px);
# more go to a folder, one PNG each, generated STREAM_BATCH at a time (bounded memory).
MAX_GRID = 4096
MAX_FOLDER = 1_000_000
MAX_POINTS = 1_000_000  # toy generators: rows of a .csv / .npy (held in memory: 8 MB in 2-D)
STREAM_BATCH = 256
# Bytes of the images one grid holds in memory (large samples: fewer per grid).
MAX_GRID_BYTES = 256 * 1024 * 1024
SAMPLE_NAME = re.compile(r"sample_\d{7}\.png")


def check_out_file(out: Path) -> None:
    """Fail before any work when OUT cannot be written (missing or read-only folder)."""
    folder = out.parent
    if out.is_dir():
        fail(f"--out {out} is a folder: give a file name (or a new folder for one PNG each)")
    if not folder.is_dir():
        fail(f"--out {out}: folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK):
        fail(f"--out {out}: folder {folder} is not writable; choose a path you can write")


def write_failed(out: Path, err: OSError) -> NoReturn:
    """A write that failed half way, as one error line naming the path."""
    fail(f"cannot write {out} ({err.strerror or err}): choose a path in a writable folder")


def check_held(gen: Generator, num: int, what: str) -> None:
    """NUM samples held at once (one grid, one points file) must fit in MAX_GRID_BYTES."""
    each = gen.metadata.sample_values * (1 if gen.metadata.is_image else 4)
    if num * each > MAX_GRID_BYTES:
        most = max(1, MAX_GRID_BYTES // each)
        fail(
            f"{what} = {num}: samples of {list(gen.metadata.sample_shape)} fit at most {most} "
            f"to one file ({MAX_GRID_BYTES // 2**20} MiB); give --out a folder for more"
        )


def is_folder(out: Path) -> bool:
    """--out names a folder (one PNG per image) when it has no suffix or is a folder."""
    return out.is_dir() or out.suffix == ""


def write_samples(gen: Generator, samples: np.ndarray, out: Path, nrow: int | None) -> None:
    """One grid or points file, written by the atomic writer (a planted link is replaced)."""
    if gen.metadata.is_image:
        if out.suffix.lower() != ".png":
            fail(f"{out}: images are written as a PNG grid; give --out a .png name")
        try:
            save_grid(samples, out, nrow=nrow)
        except OSError as err:
            write_failed(out, err)
        return
    # Toy point generators: the points themselves, one row each.
    suffix = out.suffix.lower()
    if suffix not in (".npy", ".csv"):
        fail(f"{out}: this generator makes points, not images; give --out a .csv or .npy name")
    try:
        with atomic_path(out) as tmp, tmp.open("wb") as fh:
            if suffix == ".npy":
                np.save(fh, samples)
            else:
                header = ",".join(f"x{i}" for i in range(samples.shape[1]))
                np.savetxt(fh, samples, delimiter=",", header=header, comments="")
    except OSError as err:
        write_failed(out, err)


def _prepare_folder(out: Path, overwrite: bool) -> None:
    """OUT must be new or empty; --overwrite clears only the sample_NNNNNNN.png files in it."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file: give a new folder name, or a .png name for one grid")
    if not out.is_dir():
        return
    try:
        entries = list(out.iterdir())
        ours = [e for e in entries if SAMPLE_NAME.fullmatch(e.name)]
        if entries and not overwrite:
            fail(
                f"--out {out} is a folder that already holds {len(entries)} entries: choose a "
                "new folder, or pass --overwrite to replace its sample_*.png files"
            )
        for entry in ours:  # a link is removed itself, never followed
            entry.unlink()
    except OSError as err:
        write_failed(out, err)


def stream_to_folder(
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
        write_failed(out, err)
