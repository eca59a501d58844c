"""Image grids as PNG files with PIL (no torchvision)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from ganforge.io import atomic_path


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
    data = grid_png(images, nrow=nrow, padding=padding)
    target = Path(path)
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)
    return target
