"""The prepared store: layout, loading, determinism, atomic replacement, splits, toy data."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import PrepareConfig
from ganforge.data import (
    DataError,
    StoreMissingError,
    load_meta,
    load_split,
    prepare_dataset,
    stratified_split,
)
from ganforge.data.images import convert_channels, resize_crop
from ganforge.data.store import ContentHash, save_streamed


def test_digits_store_layout_and_meta(prepared_digits: Path) -> None:
    meta = load_meta(prepared_digits)
    assert meta["dataset"] == "digits" and meta["kind"] == "images"
    assert meta["sample_shape"] == [1, 32, 32] and meta["channels"] == 1
    assert meta["image_size"] == 32
    assert meta["classes"] == [str(d) for d in range(10)] and meta["num_classes"] == 10
    assert sum(meta["splits"].values()) == 1797
    assert (
        meta["splits"]["test"] == 360 and meta["splits"]["val"] == 180
    )  # ceil(0.2 N), ceil(0.1 N)
    assert meta["seed"] == 0 and len(meta["content_hash"]) == 64
    assert meta["skipped"] == {"count": 0, "examples": []}
    for split, n in meta["splits"].items():
        part = load_split(prepared_digits, split)
        assert part.kind == "images" and len(part) == n
        assert part.data.dtype == torch.uint8 and part.data.shape == (n, 1, 32, 32)
        assert part.labels.dtype == torch.int64 and part.labels.shape == (n,)
        assert int(part.data.max()) > 200  # strokes reach near white: 0..16 scaled to 0..255


def test_split_files_are_plain_torch_saves(prepared_digits: Path) -> None:
    path = prepared_digits / "val.pt"
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every record's CRC-32 is right
    eager = torch.load(path, weights_only=True)
    mapped = load_split(prepared_digits, "val")
    assert set(eager) == {"images", "labels"}
    assert torch.equal(eager["images"], mapped.data) and torch.equal(eager["labels"], mapped.labels)


def test_load_split_is_memory_mapped(prepared_digits: Path) -> None:
    part = load_split(prepared_digits, "train")
    maps = Path("/proc/self/maps").read_text()
    assert str((prepared_digits / "train.pt").resolve()) in maps
    assert int(part.data[0].sum()) >= 0


def test_missing_store_names_the_stage(tmp_path: Path) -> None:
    with pytest.raises(StoreMissingError, match=r"dvc repro prepare"):
        load_split(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match=r"dvc repro prepare"):
        load_meta(tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        load_split(tmp_path, "training")


def test_same_params_give_byte_identical_files(tmp_path: Path) -> None:
    config = PrepareConfig(dataset="digits", image_size=16)
    first = prepare_dataset(config, seed=5, out_dir=tmp_path / "a")
    second = prepare_dataset(config, seed=5, out_dir=tmp_path / "b")
    for name in ("train.pt", "val.pt", "test.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first["content_hash"] == second["content_hash"]
    other = prepare_dataset(config, seed=6, out_dir=tmp_path / "c")
    assert other["content_hash"] != first["content_hash"]


def test_content_hash_covers_the_tensors(tmp_path: Path, prepared_digits_16: Path) -> None:
    meta = load_meta(prepared_digits_16)
    digest = ContentHash()
    for split in ("train", "val", "test"):
        stored = torch.load(prepared_digits_16 / f"{split}.pt", weights_only=True)
        for key in ("images", "labels"):
            digest.add_tensor(f"{split}/{key}", stored[key])
    assert digest.hexdigest() == meta["content_hash"]


def test_rerun_replaces_the_store_whole(tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    prepare_dataset(PrepareConfig(dataset="digits", image_size=16), seed=0, out_dir=out)
    (out / "stale.txt").write_text("from an older run")
    meta = prepare_dataset(PrepareConfig(dataset="ring_2d", num_points=200), seed=0, out_dir=out)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "meta.json").read_text())["kind"] == meta["kind"] == "points"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_digits_splits_are_stratified(prepared_digits: Path) -> None:
    counts = {}
    for split in ("train", "val", "test"):
        labels = load_split(prepared_digits, split).labels.numpy()
        counts[split] = np.bincount(labels, minlength=10)
    total = sum(counts.values())
    meta = load_meta(prepared_digits)
    for split, n in meta["splits"].items():
        expected = total * n / total.sum()
        assert np.all(np.abs(counts[split] - expected) <= 1.0), (split, counts[split], expected)


def test_stratified_split_partitions_and_handles_tiny_classes() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 1 + [3] * 2)
    parts = stratified_split(labels, {"test": 0.2, "val": 0.1}, seed=0)
    joined = np.sort(np.concatenate(list(parts.values())))
    assert np.array_equal(joined, np.arange(len(labels)))  # a partition
    assert len(parts["test"]) == 17 and len(parts["val"]) == 9  # ceil(0.2 * 83), ceil(0.1 * 83)
    again = stratified_split(labels, {"test": 0.2, "val": 0.1}, seed=0)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other = stratified_split(labels, {"test": 0.2, "val": 0.1}, seed=1)
    assert not np.array_equal(parts["test"], other["test"])


def test_rgb_digits_repeat_the_grey_channel(prepared_digits_rgb: Path) -> None:
    part = load_split(prepared_digits_rgb, "test")
    assert part.data.shape[1:] == (3, 16, 16)
    assert torch.equal(part.data[:, 0], part.data[:, 1]) and torch.equal(
        part.data[:, 0], part.data[:, 2]
    )


def test_tensor_transforms() -> None:
    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 6)
    grey = convert_channels(rgb.contiguous(), 1)
    assert grey.shape == (2, 1, 4, 6) and int(grey[0, 0, 0, 0]) == 76  # PIL's L of pure red
    wide = torch.zeros(1, 1, 10, 30, dtype=torch.uint8)
    wide[..., 10:20] = 255
    assert (resize_crop(wide, 5) == 255).all()


def test_streamed_save_matches_torch_save(tmp_path: Path) -> None:
    images = torch.randint(0, 256, (37, 3, 5, 5), dtype=torch.uint8)
    labels = torch.arange(37)
    chunks = [images[i : i + 10].numpy() for i in range(0, 37, 10)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save_streamed(
        tmp_path / "a" / "x.pt",
        {
            "images": (torch.uint8, tuple(images.shape), chunks),
            "labels": (torch.int64, (37,), [labels.numpy()]),
        },
        ContentHash(),
    )
    torch.save({"images": images, "labels": labels}, tmp_path / "b" / "x.pt")
    streamed = torch.load(tmp_path / "a" / "x.pt", weights_only=True)
    assert torch.equal(streamed["images"], images) and torch.equal(streamed["labels"], labels)
    a, b = (tmp_path / "a" / "x.pt").read_bytes(), (tmp_path / "b" / "x.pt").read_bytes()
    assert (
        len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 40
    )  # serialization id
    with pytest.raises(DataError, match="expected"):
        save_streamed(
            tmp_path / "a" / "y.pt",
            {"images": (torch.uint8, (2, 3), [np.zeros(5, np.uint8)])},
            ContentHash(),
        )


def test_ring_2d_points_and_meta(prepared_ring: Path) -> None:
    meta = load_meta(prepared_ring)
    assert meta["kind"] == "points" and meta["sample_shape"] == [2] and meta["image_size"] is None
    assert meta["classes"] == [f"mode{k}" for k in range(8)] and meta["num_classes"] == 8
    assert meta["splits"] == {"train": 1400, "val": 200, "test": 400}
    modes = np.array(meta["modes"])
    assert modes.shape == (8, 2) and np.allclose(np.linalg.norm(modes, axis=1), 2.0)
    assert meta["mode_std"] == 0.02
    for split in ("train", "val", "test"):
        part = load_split(prepared_ring, split)
        assert part.kind == "points" and part.data.dtype == torch.float32
        points, labels = part.data.numpy(), part.labels.numpy()
        distance = np.linalg.norm(points - modes[labels], axis=1)
        assert distance.max() < 5 * 0.02  # every point sits at its own mode
        assert set(labels.tolist()) == set(range(8))
    train = load_split(prepared_ring, "train").data.numpy()
    nearest = np.linalg.norm(train[:, None] - modes[None], axis=2).argmin(1)
    assert np.bincount(nearest, minlength=8).min() > 1400 / 8 * 0.7  # roughly uniform weights


def test_gaussian_1d_statistics(tmp_path: Path) -> None:
    config = PrepareConfig(
        dataset="gaussian_1d", num_points=20000, gaussian_mean=4.0, gaussian_std=0.5
    )
    meta = prepare_dataset(config, seed=0, out_dir=tmp_path / "g")
    assert meta["mean"] == 4.0 and meta["std"] == 0.5 and meta["sample_shape"] == [1]
    assert meta["classes"] == [] and meta["num_classes"] == 0
    points = load_split(tmp_path / "g", "train").data
    assert points.shape == (14000, 1)
    assert abs(float(points.mean()) - 4.0) < 0.02 and abs(float(points.std()) - 0.5) < 0.02
    assert (load_split(tmp_path / "g", "test").labels == -1).all()
