"""Pixels in, uint8 [C, H, W] out: channel conversion, antialiased resize and centre crop.

Two paths with the same geometry (the centre square, resized to `size`):
batched tensors for the in-memory sources (digits, MNIST, CIFAR-10) and PIL for files (image
folders, CelebA), decoded in parallel threads (Pillow releases the GIL while it decodes and
resizes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

# ITU-R 601-2 luma, as PIL's "L" conversion
_LUMA = (299, 587, 114)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 [N, 1|3, H, W] -> uint8 [N, channels, H, W] (repeat grey, or luma of RGB)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor(_LUMA, dtype=torch.int32).view(1, 3, 1, 1)
        luma = (
            (images.to(torch.int32) * weights)
            .sum(1, keepdim=True)
            .add_(500)
            .div_(1000, rounding_mode="floor")
        )
        return luma.to(torch.uint8)
    raise ValueError(f"cannot convert {have} channels to {channels}")


def resize_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, C, h, w] -> uint8 [N, C, size, size]: the centre square, resized to `size`
    with an antialiased bicubic filter (as Resize + CenterCrop, the square cut first)."""
    h, w = images.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[..., top : top + side, left : left + side]
    if side == size:
        return images.contiguous()
    x = F.interpolate(
        images.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False
    )
    return x.round_().clamp_(0, 255).to(torch.uint8).contiguous()


def transform_tensor(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 [N, C, h, w] (C = 1 or 3) -> uint8 [N, channels, size, size]."""
    return resize_crop(convert_channels(images, channels), size)


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent images onto black (premultiplied look); others pass through."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and arr.max() > 255:
            arr = arr / 257.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    return img


def load_image(path: str | os.PathLike[str], size: int, channels: int) -> np.ndarray:
    """Decode one file into uint8 [channels, size, size]; raises on anything unreadable."""
    with Image.open(path) as opened:
        opened.load()
        img = ImageOps.exif_transpose(opened)
        img = _flatten_alpha(img)
        img = img.convert("L" if channels == 1 else "RGB")
        w, h = img.size
        if w < 1 or h < 1:
            raise ValueError("empty image")
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        # crop first: a resize `box` would let the filter reach the pixels outside the square
        img = img.crop((left, top, left + side, top + side))
        img = img.resize((size, size), Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


@dataclass
class Failure:
    """A file that could not be used and why."""

    path: str
    reason: str


@dataclass
class DecodedChunk:
    images: np.ndarray  # uint8 [n, C, H, W]; zeros where `ok` is False; a reused buffer
    ok: np.ndarray  # bool [n]
    failures: list[Failure] = field(default_factory=list)


def _decode_into(out: np.ndarray, path: str, size: int, channels: int) -> Failure | None:
    """Decode `path` straight into `out` (a row of the chunk buffer), or say why not."""
    try:
        out[...] = load_image(path, size, channels)
        return None
    except Exception as err:  # hostile input: anything PIL or the OS throws is a skip
        reason = f"{type(err).__name__}: {err}".strip()
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            reason = "empty file (0 bytes)"
        return Failure(path, reason)


# PIL modes that hold no colour: a folder of only these is grey.
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def native_channels(paths: Sequence[str], probe: int = 64) -> int:
    """3 when any of the first `probe` readable files is in colour, else 1 (headers only)."""
    for path in paths[:probe]:
        try:
            with Image.open(path) as img:
                if img.mode not in GREY_MODES:
                    return 3
        except (OSError, ValueError):
            continue  # the decode pass reports it
    return 1


def decode_files(
    paths: Sequence[str],
    size: int,
    channels: int,
    workers: int,
    chunk_size: int,
    on_failure: Callable[[Failure], None] | None = None,
) -> Iterator[DecodedChunk]:
    """Decode `paths` in order, `chunk_size` at a time, in `workers` threads.

    Each thread writes its images straight into one chunk buffer, reused for every chunk (use
    a chunk before asking for the next), so memory is bounded by one chunk of decoded pixels
    plus one image in flight per thread. `on_failure` sees every failure in input order
    (strict mode raises from it).
    """
    sample = (channels, size, size)
    buffer = np.empty((min(chunk_size, len(paths)), *sample), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        for start in range(0, len(paths), chunk_size):
            batch = paths[start : start + chunk_size]
            n = len(batch)
            images = buffer[:n]
            results = list(pool.map(_decode_into, images, batch, [size] * n, [channels] * n))
            failures = [r for r in results if r is not None]
            for failure in failures:
                if on_failure is not None:
                    on_failure(failure)
            ok = np.fromiter((r is None for r in results), dtype=bool, count=n)
            images[~ok] = 0
            yield DecodedChunk(images, ok, failures)


def list_image_folder(root: Path) -> tuple[list[str], np.ndarray, list[str], list[Failure]]:
    """Files of an image folder: (paths, labels, classes, problems found while listing).

    Non-hidden subfolders of `root` are classes (sorted names; their files are searched
    recursively); a folder without subfolders is one unlabelled set (labels -1). Files beside
    class folders, empty class folders and unreadable folders are reported as problems.
    """
    problems: list[Failure] = []

    def walk(folder: Path) -> list[str]:
        found: list[str] = []

        def onerror(err: OSError) -> None:
            problems.append(Failure(str(err.filename), f"unreadable folder: {err.strerror}"))

        for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(
                os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")
            )
        return found

    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    subdirs = [e for e in entries if (root / e).is_dir()]
    if not subdirs:
        files = walk(root)
        return files, np.full(len(files), -1, dtype=np.int64), [], problems
    for loose in (e for e in entries if e not in subdirs):
        problems.append(Failure(str(root / loose), "file outside the class folders"))
    paths: list[str] = []
    labels: list[int] = []
    classes: list[str] = []
    for name in subdirs:
        files = walk(root / name)
        if not files:
            problems.append(Failure(str(root / name), "empty class folder"))
            continue
        paths.extend(files)
        labels.extend([len(classes)] * len(files))
        classes.append(name)
    return paths, np.asarray(labels, dtype=np.int64), classes, problems
