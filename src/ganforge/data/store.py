"""The prepared tensor store: `<dir>/{train,val,test}.pt` + `meta.json`, written and read.

Each split file is a plain `torch.save` dict, `{"images": uint8 [N, C, H, W], "labels": int64
[N]}` (toy sets: `{"points": float32 [N, D], ...}`), read back memory-mapped.

Large image splits are written without ever holding them in memory: `torch.save` writes a
skeleton file under `torch.serialization.skip_data()` (the documented way to save the layout
and fill the storage bytes in a separate pass), then the bytes are streamed into their records
chunk by chunk and the records' CRC-32s patched, so the result is byte for byte what a
`torch.save` of the full tensors writes, apart from the serialization id.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.errors import DataError, StoreMissingError

SPLITS = ("train", "val", "test")
META_FILE = "meta.json"
FORMAT_VERSION = 1
_HINT = "run `dvc repro prepare` (or `python -m pipeline.prepare`) to build it"


@dataclass(frozen=True)
class PreparedSplit:
    """One split of the store: `data` is images (uint8 [N,C,H,W]) or points (float32 [N,D])."""

    data: torch.Tensor
    labels: torch.Tensor
    kind: str  # "images" | "points"

    def __len__(self) -> int:
        return int(self.data.shape[0])


def split_path(prepared_dir: str | os.PathLike[str], split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; the store holds {', '.join(SPLITS)}")
    return Path(prepared_dir) / f"{split}.pt"


def load_split(
    prepared_dir: str | os.PathLike[str], split: str, mmap: bool = True
) -> PreparedSplit:
    """Read one split, memory-mapped by default (nothing is copied until it is touched)."""
    path = split_path(prepared_dir, split)
    if not path.is_file():
        raise StoreMissingError(f"prepared split {path} is missing: {_HINT}")
    try:
        stored = torch.load(path, mmap=mmap, weights_only=True, map_location="cpu")
    except Exception as err:  # a truncated or foreign file: say which, not where in torch
        raise DataError(f"{path} is not a readable prepared split ({err}); {_HINT}") from None
    kind = "images" if "images" in stored else "points" if "points" in stored else None
    if kind is None or "labels" not in stored:
        raise DataError(f"{path} holds {sorted(stored)}, not a prepared split; {_HINT}")
    return PreparedSplit(data=stored[kind], labels=stored["labels"], kind=kind)


def load_meta(prepared_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The store's meta.json: dataset, kind, sample_shape, classes, splits, content_hash, ..."""
    path = Path(prepared_dir) / META_FILE
    if not path.is_file():
        raise StoreMissingError(f"prepared store metadata {path} is missing: {_HINT}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); {_HINT}") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} holds a JSON {type(meta).__name__}, not an object; {_HINT}")
    return meta


class ContentHash:
    """sha256 over every stored tensor: name, dtype, shape and raw bytes, in store order."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def add(self, name: str, dtype: torch.dtype, shape: Iterable[int], digest: str) -> None:
        self._lines.append(f"{name} {str(dtype).removeprefix('torch.')} {list(shape)} {digest}")

    def add_tensor(self, name: str, tensor: torch.Tensor) -> None:
        data = tensor.contiguous().numpy().tobytes()
        self.add(name, tensor.dtype, tensor.shape, hashlib.sha256(data).hexdigest())

    def hexdigest(self) -> str:
        return hashlib.sha256("\n".join(self._lines).encode()).hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], digest: ContentHash) -> None:
    """Small splits (toy points): a plain torch.save, hashed."""
    for key, tensor in tensors.items():
        digest.add_tensor(f"{path.stem}/{key}", tensor)
    torch.save(tensors, path)


def _records(path: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (data offset, size, local header offset) of every stored record of a zip."""
    out = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
        for info in archive.infolist():
            f.seek(info.header_offset)
            header = f.read(30)
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            if info.compress_type != zipfile.ZIP_STORED:
                raise DataError(f"{path}: unexpected compressed record {info.filename}")
            offset = info.header_offset + 30 + name_len + extra_len
            out[info.filename] = (offset, info.file_size, info.flag_bits)
    return out


def _patch_crc(path: Path, name: str, offset: int, size: int, flags: int, crc: int) -> None:
    """Write a record's CRC-32 into its data descriptor (or local header) and central entry."""
    packed = struct.pack("<I", crc)
    with zipfile.ZipFile(path) as archive:
        start_dir = archive.start_dir
        header_offset = archive.getinfo(name).header_offset
    with open(path, "r+b") as f:
        if flags & 0x08:  # data descriptor after the data, optionally signed
            f.seek(offset + size)
            signed = f.read(4) == b"PK\x07\x08"
            f.seek(offset + size + (4 if signed else 0))
            f.write(packed)
        f.seek(header_offset + 14)
        if not flags & 0x08:
            f.write(packed)
        f.seek(start_dir)
        while True:
            entry = f.read(46)
            if len(entry) < 46 or entry[:4] != b"PK\x01\x02":
                raise DataError(f"{path}: record {name} not found in the zip directory")
            name_len, extra_len, comment_len = struct.unpack("<HHH", entry[28:34])
            entry_name = f.read(name_len).decode()
            if entry_name == name:
                f.seek(-(46 + name_len), os.SEEK_CUR)
                f.seek(16, os.SEEK_CUR)
                f.write(packed)
                return
            f.seek(extra_len + comment_len, os.SEEK_CUR)


def save_streamed(
    path: Path,
    tensors: dict[str, tuple[torch.dtype, tuple[int, ...], Iterable[np.ndarray]]],
    digest: ContentHash,
) -> None:
    """torch.save a dict of tensors whose bytes arrive in chunks, holding one chunk at a time.

    `tensors` maps key -> (dtype, shape, iterable of contiguous numpy chunks in row order).
    """
    with torch.serialization.skip_data():
        skeleton = {
            key: torch.empty(shape, dtype=dtype) for key, (dtype, shape, _) in tensors.items()
        }
        torch.save(skeleton, path)
    del skeleton
    records = _records(path)
    stem = path.stem
    for index, (key, (dtype, shape, chunks)) in enumerate(tensors.items()):
        name = f"{stem}/data/{index}"
        offset, size, flags = records[name]
        expected = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
        if size != expected:
            raise DataError(f"{path}: record {name} holds {size} bytes, expected {expected}")
        crc, sha, written = 0, hashlib.sha256(), 0
        with open(path, "r+b") as f:
            f.seek(offset)
            for chunk in chunks:
                buffer = np.ascontiguousarray(chunk).data.cast("B")
                f.write(buffer)
                crc = zlib.crc32(buffer, crc)
                sha.update(buffer)
                written += len(buffer)
        if written != size:
            raise DataError(f"{path}: wrote {written} bytes into {name}, expected {size}")
        _patch_crc(path, name, offset, size, flags, crc)
        digest.add(f"{stem}/{key}", dtype, shape, sha.hexdigest())
