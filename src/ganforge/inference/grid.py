"""Image grids as PNG files with PIL (no torchvision)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from ganforge.io import atomic_path

# The line that sets the means column and the result row apart in `arithmetic_grid`: mid
# grey, visible on the black padding and on dark or light images alike.
SEPARATOR = 128


def make_grid(
    images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0
) -> np.ndarray:
    """uint8 images [N, H, W, C] -> one uint8 grid [H', W', C], `nrow` images per row.

    `nrow` defaults to a square-ish grid, as torchvision's `make_grid` lays images out.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(
            f"make_grid wants uint8 images [N, H, W, C], got {images.dtype} {images.shape}"
        )
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("make_grid got no images")
    ncol = max(1, min(nrow or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / ncol)
    grid = np.full(
        (rows * (h + padding) + padding, ncol * (w + padding) + padding, c), pad_value, np.uint8
    )
    for i, img in enumerate(images):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = img
    return grid


def arithmetic_grid(
    images: np.ndarray, padding: int = 2, line: int = SEPARATOR, pad_value: int = 0
) -> np.ndarray:
    """A table of images [R, K, H, W, C] -> one uint8 grid, its last row and column set apart.

    The layout of `Generator.class_arithmetic`'s images: rows a, b, c and a − b + c, columns
    the samples and then their mean. The last column and the last row sit behind a wider
    gap crossed by a one-pixel line of value `line`, so that the means column reads as
    the equation a, b, c, = result. `web/static/app.js` draws the same pixels.
    """
    images = np.asarray(images)
    if images.ndim != 5 or images.dtype != np.uint8 or min(images.shape[:2]) < 2:
        raise ValueError(
            "arithmetic_grid wants uint8 images [rows, columns, H, W, C] with at least 2 rows "
            f"and 2 columns, got {images.dtype} {images.shape}"
        )
    rows, cols, h, w, c = images.shape
    step_y, step_x, extra = h + padding, w + padding, 1 + padding
    grid = np.full(
        (padding + rows * step_y + extra, padding + cols * step_x + extra, c), pad_value, np.uint8
    )
    grid[:, padding + (cols - 1) * step_x] = line
    grid[padding + (rows - 1) * step_y, :] = line
    for r in range(rows):
        y = padding + r * step_y + (extra if r == rows - 1 else 0)
        for col in range(cols):
            x = padding + col * step_x + (extra if col == cols - 1 else 0)
            grid[y : y + h, x : x + w] = images[r, col]
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 image [H, W, C] (C = 1 or 3) encoded as PNG: grey or RGB."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_png(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> bytes:
    """Images [N, H, W, C] as the bytes of one PNG grid (what `save_grid` writes)."""
    return png_bytes(make_grid(images, nrow=nrow, padding=padding))


def save_grid(
    images: np.ndarray,
    path: str | os.PathLike[str],
    nrow: int | None = None,
    padding: int = 2,
) -> Path:
    """Write images [N, H, W, C] as one PNG grid, atomically; returns the path."""
    return save_image(make_grid(images, nrow=nrow, padding=padding), path)


def save_image(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write one uint8 image [H, W, C] (a grid already laid out) as PNG, atomically."""
    data = png_bytes(image)
    target = Path(path)
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)
    return target


def to_uint8(
    samples: np.ndarray, value_range: tuple[float, float] | None = (-1.0, 1.0)
) -> np.ndarray:
    """float images [N, C, H, W] in `value_range` -> uint8 [N, H, W, C], clamped."""
    lo, hi = value_range or (-1.0, 1.0)
    scaled = (np.asarray(samples, np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
