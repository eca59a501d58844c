"""Build the prepared store from a PrepareConfig: decode once, split, write atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.config import PrepareConfig
from ganforge.data import sources, toy
from ganforge.data.errors import DataError
from ganforge.data.images import Failure
from ganforge.data.splits import stratified_split
from ganforge.data.store import (
    FORMAT_VERSION,
    META_FILE,
    SPLITS,
    ContentHash,
    save_streamed,
    save_tensors,
)

log = logging.getLogger(__name__)

TOY_DATASETS = ("gaussian_1d", "ring_2d", "grid_2d")
MAX_EXAMPLES = 10

#: progress(phase, done, total), phase being "decode" or "write"
Progress = Callable[[str, int, int], None]


class _Skipped:
    """Counts unusable inputs, keeps the first few, or stops at the first in strict mode."""

    def __init__(self, root: Path, strict: bool) -> None:
        self.root, self.strict = root, strict
        self.count = 0
        self.examples: list[dict[str, str]] = []

    def _name(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return path

    def __call__(self, failure: Failure) -> None:
        name = self._name(failure.path)
        if self.strict:
            raise DataError(
                f"{failure.path}: {failure.reason}. `prepare.strict` is true, so prepare stops at "
                "the first unusable input; fix or remove it, or set `prepare.strict: false` to "
                "skip such files."
            )
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"path": name, "reason": failure.reason})
            log.warning("skipping %s: %s", name, failure.reason)
        elif self.count == MAX_EXAMPLES + 1:
            log.warning("more unusable inputs are skipped; only the count is kept from here on")

    def as_meta(self) -> dict[str, Any]:
        return {"count": self.count, "examples": self.examples}


def prepare_dataset(
    config: PrepareConfig,
    seed: int,
    out_dir: str | os.PathLike[str],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the whole store for `config` into `out_dir` and return its meta.

    The store is built in a temporary folder beside `out_dir` and renamed into place only
    when complete: a failed run leaves no partial store and keeps any previous one.
    """
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(work, 0o755)
        if config.dataset in TOY_DATASETS:
            meta = _prepare_points(config, seed, work)
        else:
            meta = _prepare_images(config, seed, work, progress)
        meta.update({"format_version": FORMAT_VERSION, "seed": seed, "config": config.model_dump()})
        (work / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        _replace_dir(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info(
        "prepared %s: %s (content %s)",
        config.dataset,
        ", ".join(f"{k} {v}" for k, v in meta["splits"].items()),
        meta["content_hash"][:12],
    )
    return meta


def _replace_dir(new: Path, target: Path) -> None:
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "store")
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old / "store", target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _split_fractions(config: PrepareConfig) -> dict[str, float]:
    return {"test": config.test_fraction, "val": config.val_fraction}


def _prepare_points(config: PrepareConfig, seed: int, work: Path) -> dict[str, Any]:
    data_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    if config.dataset == "gaussian_1d":
        data = toy.gaussian_1d(
            config.num_points, config.gaussian_mean, config.gaussian_std, data_seed
        )
    elif config.dataset == "grid_2d":
        data = toy.grid_2d(config.num_points, data_seed)
    else:
        data = toy.ring_2d(config.num_points, data_seed)
    rows = stratified_split(data.labels, _split_fractions(config), seed)
    digest = ContentHash()
    for split in SPLITS:
        index = rows[split]
        tensors = {
            "points": torch.from_numpy(np.ascontiguousarray(data.points[index])),
            "labels": torch.from_numpy(np.ascontiguousarray(data.labels[index])),
        }
        save_tensors(work / f"{split}.pt", tensors, digest)
    return {
        "dataset": config.dataset,
        "kind": "points",
        "sample_shape": [int(data.points.shape[1])],
        "channels": None,
        "image_size": None,
        "dtype": "float32",
        "classes": data.classes,
        "num_classes": len(data.classes),
        "splits": {s: int(len(rows[s])) for s in SPLITS},
        "split_method": "stratified" if data.classes else "random",
        "content_hash": digest.hexdigest(),
        "skipped": {"count": 0, "examples": []},
        **data.info,
    }


# `prepare.channels: auto`: each data set's own channels (an image folder is probed).
NATIVE_CHANNELS = {"digits": 1, "mnist": 1, "fashion_mnist": 1, "cifar10": 3, "celeba": 3}


def _open_source(config: PrepareConfig, skipped: _Skipped) -> sources.ImageSource:
    root = Path(config.root)
    size, chunk = config.image_size, config.chunk_size
    channels: int
    if config.channels != "auto":
        channels = config.channels
    elif config.dataset == "image_folder":
        return sources.image_folder_source(root, size, None, config.workers, chunk, skipped)
    else:
        channels = NATIVE_CHANNELS[config.dataset]
    match config.dataset:
        case "digits":
            return sources.digits_source(size, channels, chunk)
        case "mnist" | "fashion_mnist":
            return sources.mnist_source(
                config.dataset, root, config.download, size, channels, chunk
            )
        case "cifar10":
            return sources.cifar10_source(root, config.download, size, channels, chunk)
        case "celeba":
            return sources.celeba_source(
                root, config.download, size, channels, config.workers, chunk, skipped
            )
        case "image_folder":
            return sources.image_folder_source(root, size, channels, config.workers, chunk, skipped)
    raise DataError(f"unknown data set {config.dataset!r}")  # pragma: no cover (config validates)


def _assign_splits(
    source: sources.ImageSource,
    usable: np.ndarray,
    labels: np.ndarray,
    config: PrepareConfig,
    seed: int,
) -> tuple[dict[str, np.ndarray], str]:
    """Rows of the scratch buffer for each split, each in a seeded random order."""
    if source.official is None:
        picked = stratified_split(labels[usable], _split_fractions(config), seed)
        return {s: usable[picked[s]] for s in SPLITS}, "stratified"
    rng = np.random.default_rng(seed)
    official = source.official[usable]
    train = usable[official == sources.TRAIN]
    out = {"test": rng.permutation(usable[official == sources.TEST])}
    if (official == sources.VAL).any():
        out["val"] = rng.permutation(usable[official == sources.VAL])
        out["train"] = rng.permutation(train)
        return {s: out[s] for s in SPLITS}, "official"
    picked = stratified_split(labels[train], {"val": config.val_fraction}, seed)
    out["val"], out["train"] = train[picked["val"]], train[picked["train"]]
    return {s: out[s] for s in SPLITS}, "official train/test; val stratified from train"


def _read_rows(path: Path, rows: np.ndarray, buffer: np.ndarray) -> Iterator[np.ndarray]:
    """Rows of the scratch file in the order given, a buffer-full at a time (the buffer is
    reused: one allocation for the whole write phase keeps the heap from fragmenting)."""
    capacity, row_bytes = buffer.shape
    fd = os.open(path, os.O_RDONLY)
    try:
        for start in range(0, len(rows), capacity):
            part = rows[start : start + capacity]
            block = buffer[: len(part)]
            for i, row in enumerate(part):
                if os.preadv(fd, [block[i]], int(row) * row_bytes) != row_bytes:
                    raise DataError(f"{path}: short read at row {row}")
            yield block
    finally:
        os.close(fd)


def _prepare_images(
    config: PrepareConfig, seed: int, work: Path, progress: Progress | None
) -> dict[str, Any]:
    skipped = _Skipped(Path(config.root), config.strict)
    source = _open_source(config, skipped)
    sample = (source.channels, config.image_size, config.image_size)
    if source.total == 0:
        raise DataError(f"{config.dataset}: the source at {config.root} holds no images")
    # 1. decode every item once, in order, into a scratch file (one chunk in memory)
    scratch = work / ".decoded.u8"
    usable = _decode_to_scratch(source, sample, scratch, config, progress)
    if len(usable) == 0:
        first = skipped.examples[0] if skipped.examples else None
        hint = f" (first: {first['path']}: {first['reason']})" if first else ""
        raise DataError(
            f"no usable image in {config.root}: all {source.total} inputs were skipped{hint}"
        )
    # 2. labels: an image-folder class whose files all failed is dropped, the rest renumbered
    labels, classes, dropped = _drop_empty_classes(source, usable)
    # 3. split and write each split file from the scratch rows
    rows, method = _assign_splits(source, usable, labels, config, seed)
    _check_splits(rows, len(usable), config)
    digest = _write_splits(
        work, scratch, rows, labels, sample, len(usable), config.chunk_size, progress
    )
    scratch.unlink()
    return {
        "dataset": config.dataset,
        "kind": "images",
        "sample_shape": list(sample),
        "channels": source.channels,
        "image_size": config.image_size,
        "dtype": "uint8",
        "value_range": [0, 255],
        "classes": classes,
        "num_classes": len(classes),
        "dropped_classes": dropped,
        "splits": {s: int(len(rows[s])) for s in SPLITS},
        "split_method": method,
        "content_hash": digest.hexdigest(),
        "skipped": skipped.as_meta(),
        "source": source.info,
    }


def _decode_to_scratch(
    source: sources.ImageSource,
    sample: tuple[int, int, int],
    scratch: Path,
    config: PrepareConfig,
    progress: Progress | None,
) -> np.ndarray:
    """Every item of `source` as raw uint8 rows of `scratch`, in order; the usable rows.

    Returns once the decode buffers are gone, before the write phase allocates its own.
    """
    total = source.total
    usable_mask = np.zeros(total, dtype=bool)
    done = 0
    with open(scratch, "wb") as f:
        for chunk in source.chunks():
            images = np.ascontiguousarray(chunk.images, dtype=np.uint8)
            if images.shape[1:] != sample:
                raise DataError(f"internal: a chunk of shape {images.shape[1:]}, expected {sample}")
            f.write(images.data.cast("B"))
            usable_mask[done : done + len(images)] = chunk.ok
            done += len(images)
            if progress is not None:
                progress("decode", done, total)
    if done != total:
        raise DataError(f"{config.dataset}: decoded {done} items, expected {total}")
    return np.flatnonzero(usable_mask)


def _drop_empty_classes(
    source: sources.ImageSource, usable: np.ndarray
) -> tuple[np.ndarray, list[str], list[str]]:
    """(labels, classes, dropped classes): classes without a usable image renumbered away."""
    labels, classes, dropped = source.labels.copy(), list(source.classes), []
    if source.drop_empty_classes and classes:
        present = np.unique(labels[usable])
        if len(present) < len(classes):
            dropped = [c for i, c in enumerate(classes) if i not in set(present.tolist())]
            log.warning("classes without a usable image are dropped: %s", ", ".join(dropped))
            remap = np.full(len(classes), -1, dtype=np.int64)
            remap[present] = np.arange(len(present))
            labels = np.where(labels >= 0, remap[labels.clip(0)], -1)
            classes = [classes[i] for i in present]
    return labels, classes, dropped


def _check_splits(rows: dict[str, np.ndarray], usable: int, config: PrepareConfig) -> None:
    """DataError naming the fractions when the train or the test split is empty."""
    for split in ("train", "test"):
        if len(rows[split]) == 0:
            raise DataError(
                f"the {split} split is empty: {usable} usable images are too few for "
                f"val_fraction {config.val_fraction} and test_fraction {config.test_fraction}"
            )


def _write_splits(
    work: Path,
    scratch: Path,
    rows: dict[str, np.ndarray],
    labels: np.ndarray,
    sample: tuple[int, int, int],
    usable: int,
    chunk_size: int,
    progress: Progress | None,
) -> ContentHash:
    """Each split's file, its images streamed from the scratch rows (`usable` of them in
    all); the store's digest."""
    digest = ContentHash()
    written = 0
    buffer = np.empty((min(chunk_size, usable), int(np.prod(sample))), dtype=np.uint8)
    for split in SPLITS:
        index = rows[split]
        n = len(index)

        def image_blocks(index: np.ndarray = index) -> Iterator[np.ndarray]:
            nonlocal written
            for block in _read_rows(scratch, index, buffer):
                yield block
                written += len(block)
                if progress is not None:
                    progress("write", written, usable)

        save_streamed(
            work / f"{split}.pt",
            {
                "images": (torch.uint8, (n, *sample), image_blocks()),
                "labels": (torch.int64, (n,), [np.ascontiguousarray(labels[index])]),
            },
            digest,
        )
    return digest
