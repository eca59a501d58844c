"""Image sources: where pixels come from before they reach the store.

Every source describes itself up front (how many items, their labels, class names, and an
official split where the data set has one) and then yields uint8 [n, C, H, W] chunks in item
order, already converted to the requested channels and size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.errors import DataError
from ganforge.data.images import DecodedChunk as Chunk
from ganforge.data.images import (
    Failure,
    decode_files,
    list_image_folder,
    native_channels,
    transform_tensor,
)

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = 0, 1, 2


@dataclass
class ImageSource:
    """What a source holds and how to get its pixels."""

    name: str
    labels: np.ndarray  # int64 [total], -1 where unlabelled
    classes: list[str]
    chunks: Callable[[], Iterator[Chunk]]
    channels: int  # of the images `chunks` yields
    official: np.ndarray | None = None  # int8 [total]: TRAIN/VAL/TEST where the set has splits
    problems: list[Failure] = field(default_factory=list)  # found before decoding
    drop_empty_classes: bool = False  # image folders: a class whose files all fail goes
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.labels)


def _tensor_chunks(
    data: torch.Tensor, size: int, channels: int, chunk_size: int
) -> Callable[[], Iterator[Chunk]]:
    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(data), chunk_size):
            part = transform_tensor(data[start : start + chunk_size], size, channels)
            yield Chunk(part.numpy(), np.ones(len(part), dtype=bool))

    return chunks


def digits_source(size: int, channels: int, chunk_size: int) -> ImageSource:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, values 0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    data = torch.from_numpy(pixels).unsqueeze(1)
    return ImageSource(
        name="digits",
        labels=bunch.target.astype(np.int64),
        classes=[str(int(c)) for c in bunch.target_names],
        chunks=_tensor_chunks(data, size, channels, chunk_size),
        channels=channels,
        info={"source": "sklearn.datasets.load_digits"},
    )


# ---------------------------------------------------------------------------------------------
# torchvision data sets


def _missing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if not p.exists()]


def _torchvision_error(
    dataset: str, root: Path, expected: list[Path], where: Path, fetch: str, err: Exception
) -> DataError:
    missing = _missing(expected)
    if missing:
        names = ", ".join(p.name for p in missing)
        zipped = [p for p in missing if p.with_name(p.name + ".gz").is_file()]
        if zipped:
            fetch = f"gunzip the .gz files already in {where} (torchvision reads them unpacked)"
        return DataError(
            f"{dataset}: {len(missing)} of its files are missing from {where}: {names}. "
            f"On a machine with internet, set `prepare.download: true` in params.yaml (torchvision "
            f"fetches them into {root}), or {fetch}."
        )
    return DataError(
        f"{dataset}: the files under {where} are there but torchvision rejected them ({err}). "
        "A partial or corrupted download? Delete them and fetch them again (`prepare.download: "
        "true` on a machine with internet)."
    )


def _open_torchvision(
    dataset: str,
    factory: Callable[[], Any],
    root: Path,
    expected: list[Path],
    where: Path,
    fetch: str,
    download: bool,
) -> Any:
    if not download and _missing(expected):
        raise _torchvision_error(dataset, root, expected, where, fetch, FileNotFoundError())
    try:
        return factory()
    except (RuntimeError, OSError, ValueError, ImportError) as err:  # ImportError: gdown
        raise _torchvision_error(dataset, root, expected, where, fetch, err) from None


def mnist_source(
    dataset: str, root: Path, download: bool, size: int, channels: int, chunk_size: int
) -> ImageSource:
    """MNIST or Fashion-MNIST from torchvision: official 60k train / 10k test."""
    from torchvision import datasets

    cls = datasets.MNIST if dataset == "mnist" else datasets.FashionMNIST
    raw = root / cls.__name__ / "raw"
    files = [os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]
    expected = [raw / f for f in files]
    fetch = (
        f"download {', '.join(f + '.gz' for f in files)} (from {cls.mirrors[0]}), gunzip them and "
        f"copy the uncompressed IDX files into {raw}/"
    )
    parts = [
        _open_torchvision(
            dataset,
            partial(cls, str(root), train=train, download=download),
            root,
            expected,
            raw,
            fetch,
            download,
        )
        for train in (True, False)
    ]
    data = torch.cat([p.data for p in parts]).unsqueeze(1)
    labels = torch.cat([p.targets for p in parts]).numpy().astype(np.int64)
    official = np.concatenate(
        [np.full(len(parts[0].data), TRAIN), np.full(len(parts[1].data), TEST)]
    )
    return ImageSource(
        name=dataset,
        labels=labels,
        classes=list(parts[0].classes),
        chunks=_tensor_chunks(data, size, channels, chunk_size),
        channels=channels,
        official=official.astype(np.int8),
        info={"source": f"torchvision.datasets.{cls.__name__}", "root": str(root)},
    )


def cifar10_source(
    root: Path, download: bool, size: int, channels: int, chunk_size: int
) -> ImageSource:
    """CIFAR-10 from torchvision's python pickles: official 50k train / 10k test."""
    from torchvision import datasets

    cls = datasets.CIFAR10
    where = root / cls.base_folder
    names = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    fetch = f"download {cls.url} and extract it in {root} (it unpacks to {cls.base_folder}/)"
    parts = [
        _open_torchvision(
            "cifar10",
            partial(cls, str(root), train=train, download=download),
            root,
            [where / n for n in names],
            where,
            fetch,
            download,
        )
        for train in (True, False)
    ]
    data = torch.from_numpy(np.concatenate([p.data for p in parts])).permute(0, 3, 1, 2)
    labels = np.concatenate([np.asarray(p.targets, dtype=np.int64) for p in parts])
    official = np.concatenate(
        [np.full(len(parts[0].data), TRAIN), np.full(len(parts[1].data), TEST)]
    )
    return ImageSource(
        name="cifar10",
        labels=labels,
        classes=list(parts[0].classes),
        chunks=_tensor_chunks(data, size, channels, chunk_size),
        channels=channels,
        official=official.astype(np.int8),
        info={"source": "torchvision.datasets.CIFAR10", "root": str(root)},
    )


def celeba_source(
    root: Path,
    download: bool,
    size: int,
    channels: int,
    workers: int,
    chunk_size: int,
    on_failure: Callable[[Failure], None] | None,
) -> ImageSource:
    """CelebA aligned faces via torchvision: official train/valid/test, unlabelled."""
    from torchvision import datasets

    cls = datasets.CelebA
    where = root / cls.base_folder
    names = [f for _, _, f in cls.file_list if not f.endswith((".zip", ".7z"))]
    expected = [where / n for n in names] + [where / "img_align_celeba"]
    fetch = (
        "copy the CelebA files (img_align_celeba/ with the aligned JPEGs, and "
        f"{', '.join(names)}) from the official site (mmlab.ie.cuhk.edu.hk/projects/CelebA.html) "
        f"into {where}/ (torchvision's download needs the `gdown` package)"
    )
    paths: list[str] = []
    official: list[int] = []
    for split, code in (("train", TRAIN), ("valid", VAL), ("test", TEST)):
        part = _open_torchvision(
            "celeba",
            partial(cls, str(root), split=split, target_type=[], download=download),
            root,
            expected,
            where,
            fetch,
            download,
        )
        paths.extend(str(where / "img_align_celeba" / f) for f in part.filename)
        official.extend([code] * len(part.filename))

    def chunks() -> Iterator[Chunk]:
        return decode_files(paths, size, channels, workers, chunk_size, on_failure)

    return ImageSource(
        name="celeba",
        labels=np.full(len(paths), -1, dtype=np.int64),
        classes=[],
        chunks=chunks,
        channels=channels,
        official=np.asarray(official, dtype=np.int8),
        info={"source": "torchvision.datasets.CelebA", "root": str(root)},
    )


def image_folder_source(
    root: Path,
    size: int,
    channels: int | None,
    workers: int,
    chunk_size: int,
    on_failure: Callable[[Failure], None] | None,
) -> ImageSource:
    """A folder of images: class subfolders give labels (sorted names); a flat folder has none.

    `channels` None: the folder's own (`native_channels`: RGB when its files are in colour).
    """
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; set `prepare.root` to your images")
    if not root.is_dir():
        raise DataError(f"image folder {root} is not a folder; set `prepare.root` to a folder")
    try:
        paths, labels, classes, problems = list_image_folder(root)
    except OSError as err:
        raise DataError(f"image folder {root} cannot be read: {err.strerror}") from None
    if not paths:
        raise DataError(
            f"image folder {root} holds no files (expected images, optionally in one subfolder "
            "per class)"
        )
    if on_failure is not None:
        for problem in problems:
            on_failure(problem)

    if channels is None:
        channels = native_channels(paths)
    bands = channels

    def chunks() -> Iterator[Chunk]:
        return decode_files(paths, size, bands, workers, chunk_size, on_failure)

    return ImageSource(
        name="image_folder",
        labels=labels,
        classes=classes,
        chunks=chunks,
        channels=channels,
        problems=problems,
        drop_empty_classes=True,
        info={"source": "image_folder", "root": str(root)},
    )
