"""An unlabelled RGB image folder cut from scikit-learn's two bundled photos (china, flower).

`write_photo_crops` writes `count` random `size`×`size` crops (half of them mirrored left to
right) of `sklearn.datasets.load_sample_images()` as PNG files into one flat folder: the layout
`prepare.dataset: image_folder` reads as one unlabelled set (no class subfolders). The folder
is built beside its destination and renamed into place, so a failed run leaves none.
A bench data set for the RGB / 64 px recipe, offline; not a natural-image benchmark.

    python bench/sample_photos.py [--root data/raw] [--count 2000] [--size 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def photo_crops(count: int = 2000, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [count, size, size, 3]: distinct random crops of the sample photos, about half of
    them mirrored left to right; photo, position and flip drawn from `seed` without repeats."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # uint8 [427, 640, 3] each
    if any(min(p.shape[:2]) < size for p in photos):
        raise ValueError(f"size = {size}: the photos are only {photos[0].shape[:2]} pixels")
    # every (photo, top, left, flip) once at most: no two crops are the same image
    grids = [(p.shape[0] - size + 1, p.shape[1] - size + 1) for p in photos]
    sizes = np.array([rows * cols * 2 for rows, cols in grids])
    if count > sizes.sum():
        raise ValueError(f"count = {count}: only {sizes.sum()} distinct crops of {size} px")
    picks = np.random.default_rng(seed).choice(int(sizes.sum()), size=count, replace=False)
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for i, pick in enumerate(picks):
        which = int(np.searchsorted(starts, pick, side="right")) - 1
        rest, flip = divmod(int(pick - starts[which]), 2)
        top, left = divmod(rest, grids[which][1])
        crop = photos[which][top : top + size, left : left + size]
        out[i] = crop[:, ::-1] if flip else crop
    return out


def write_photo_crops(folder: str | Path, count: int = 2000, size: int = 64, seed: int = 0) -> int:
    """Write the crops as `folder`/crop_00000.png ...; replaces an earlier folder whole."""
    from PIL import Image

    target = Path(folder)
    if target.is_symlink():
        raise SystemExit(f"{target} is a symlink: refusing to write through it")
    crops = photo_crops(count, size, seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(work, 0o755)
        width = max(5, len(str(count - 1)))
        for i, crop in enumerate(crops):
            Image.fromarray(crop, mode="RGB").save(work / f"crop_{i:0{width}d}.png")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "folder")
            shutil.rmtree(old)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=Path("data/raw"),
        help="the folder to write (params.yaml prepare.root of an image_folder run)",
    )  # fmt: skip
    parser.add_argument("--count", type=int, default=2000, help="number of crops")
    parser.add_argument("--size", type=int, default=64, help="side of a crop in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of positions and flips")
    args = parser.parse_args(argv)
    try:
        n = write_photo_crops(args.root, args.count, args.size, args.seed)
    except ValueError as err:
        raise SystemExit(f"sample_photos: {err}") from None
    print(f"wrote {n} {args.size}x{args.size} RGB crops to {args.root}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
