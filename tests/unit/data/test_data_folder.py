"""Image folders, hostile input included: skipped with a record, or a clear stop when strict."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.config import PrepareConfig
from ganforge.data import DataError, load_meta, load_split, prepare_dataset

ROOT = Path(__file__).resolve().parents[3]


def _png(path: Path, value: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        img = Image.new("RGB", size, (value, value, value))
    elif mode == "RGBA":
        img = Image.new("RGBA", size, (value, value, value, 255))
    elif mode == "P":
        img = Image.new("RGB", size, (value, value, value)).convert("P")
    elif mode == "I;16":
        img = Image.fromarray(np.full(size[::-1], value * 257, dtype=np.uint16))
    else:
        img = Image.new(mode, size, value)
    img.save(path)


def _hostile_folder(root: Path) -> None:
    """Two good classes of 10 images (cat dark, dog bright) plus every kind of junk."""
    for i in range(10):
        _png(root / "cat" / f"c{i:02d}.png", 10, mode=["RGB", "L", "P", "RGBA", "I;16"][i % 5])
        _png(root / "dog" / "nested" / f"d{i:02d}.png", 200, size=(30, 50))
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(buffer, format="PNG")
    (root / "cat" / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "cat" / "zero.jpg").write_bytes(b"")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken-link.png").symlink_to(root / "nowhere.png")
    (root / "empty_class").mkdir()
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored silently


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    _hostile_folder(tmp_path / "images")
    return tmp_path / "images"


def _config(root: Path, **options) -> PrepareConfig:
    defaults = {
        "val_fraction": 0.1, "test_fraction": 0.2, "image_size": 16, "chunk_size": 16,
        "channels": 1,
    }  # fmt: skip
    return PrepareConfig(dataset="image_folder", root=str(root), **{**defaults, **options})


def test_hostile_folder_skips_and_records(hostile: Path, tmp_path: Path) -> None:
    meta = prepare_dataset(_config(hostile), seed=0, out_dir=tmp_path / "prepared")
    assert meta["classes"] == ["cat", "dog"] and meta["num_classes"] == 2
    assert sum(meta["splits"].values()) == 20
    assert meta["splits"] == {"train": 14, "val": 2, "test": 4}
    skipped = meta["skipped"]
    assert skipped["count"] == 5
    paths = {e["path"] for e in skipped["examples"]}
    assert paths == {
        "empty_class",
        os.path.join("cat", "truncated.png"),
        os.path.join("cat", "zero.jpg"),
        os.path.join("dog", "notes.txt"),
        os.path.join("dog", "broken-link.png"),
    }
    reasons = {e["path"]: e["reason"] for e in skipped["examples"]}
    assert "empty" in reasons[os.path.join("cat", "zero.jpg")]
    assert load_meta(tmp_path / "prepared")["skipped"] == skipped
    for split in ("train", "val", "test"):
        part = load_split(tmp_path / "prepared", split)
        assert part.data.shape[1:] == (1, 16, 16)
        means = part.data.flatten(1).float().mean(1)
        # every mode (RGB, L, P, RGBA, 16-bit) came out at its grey level, next to its label
        np.testing.assert_allclose(
            means.numpy(), np.where(part.labels.numpy() == 0, 10, 200), atol=1
        )
        assert set(part.labels.tolist()) == {0, 1}  # stratified: both classes in every split


def test_strict_mode_stops_naming_the_file(hostile: Path, tmp_path: Path) -> None:
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "keep.txt").write_text("previous store")
    with pytest.raises(DataError, match=r"prepare\.strict"):
        prepare_dataset(_config(hostile, strict=True), seed=0, out_dir=tmp_path / "prepared")
    # the previous store is untouched and no temporary folder is left behind
    assert (tmp_path / "prepared" / "keep.txt").read_text() == "previous store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "prepared"]


def test_strict_mode_passes_a_clean_folder(tmp_path: Path) -> None:
    for i in range(10):
        _png(tmp_path / "clean" / f"{i}.png", 100)
    meta = prepare_dataset(_config(tmp_path / "clean", strict=True), seed=0, out_dir=tmp_path / "p")
    assert meta["skipped"]["count"] == 0


def test_flat_folder_is_unlabelled_rgb(tmp_path: Path) -> None:
    for i in range(12):
        _png(tmp_path / "flat" / f"{i:02d}.png", 50 + i, size=(64, 48))
    meta = prepare_dataset(_config(tmp_path / "flat", channels=3), seed=0, out_dir=tmp_path / "p")
    assert meta["classes"] == [] and meta["num_classes"] == 0
    train = load_split(tmp_path / "p", "train")
    assert train.data.shape[1:] == (3, 16, 16) and (train.labels == -1).all()


@pytest.mark.parametrize(("mode", "channels"), [("RGB", 3), ("L", 1), ("I;16", 1)])
def test_channels_auto_keeps_the_folder_s_own(tmp_path: Path, mode: str, channels: int) -> None:
    for i in range(10):
        _png(tmp_path / "flat" / f"{i:02d}.png", 50 + i, mode=mode)
    config = _config(tmp_path / "flat", channels="auto")
    meta = prepare_dataset(config, seed=0, out_dir=tmp_path / "p")
    assert meta["channels"] == channels
    assert load_split(tmp_path / "p", "train").data.shape[1] == channels


def test_centre_crop_keeps_the_middle(tmp_path: Path) -> None:
    pixels = np.zeros((20, 60), dtype=np.uint8)
    pixels[:, 20:40] = 255  # a white centre square between black side bands
    for i in range(10):
        (tmp_path / "wide").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "wide" / f"{i}.png")
    prepare_dataset(_config(tmp_path / "wide"), seed=0, out_dir=tmp_path / "p")
    assert (load_split(tmp_path / "p", "train").data == 255).all()


def test_empty_and_missing_folders_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=str(tmp_path / "empty")):
        prepare_dataset(_config(tmp_path / "empty"), seed=0, out_dir=tmp_path / "p")
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset(_config(tmp_path / "absent"), seed=0, out_dir=tmp_path / "p")
    (tmp_path / "junk" / "a").mkdir(parents=True)
    (tmp_path / "junk" / "a" / "x.png").write_bytes(b"")
    (tmp_path / "junk" / "a" / "y.txt").write_text("hi")
    with pytest.raises(DataError, match=r"no usable image in .*junk"):
        prepare_dataset(_config(tmp_path / "junk"), seed=0, out_dir=tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_parallel_decoding_is_deterministic(hostile: Path, tmp_path: Path) -> None:
    prepare_dataset(_config(hostile, workers=1, chunk_size=16), seed=3, out_dir=tmp_path / "a")
    prepare_dataset(_config(hostile, workers=4, chunk_size=64), seed=3, out_dir=tmp_path / "b")
    for split in ("train", "val", "test"):
        assert (tmp_path / "a" / f"{split}.pt").read_bytes() == (
            tmp_path / "b" / f"{split}.pt"
        ).read_bytes()


def _stage(work: Path, prepare: dict[str, object]) -> subprocess.CompletedProcess[str]:
    import yaml

    (work / "params.yaml").write_text(yaml.safe_dump({"seed": 0, "prepare": prepare}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.prepare"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stage_writes_store_and_metrics_or_a_clean_error(hostile: Path, tmp_path: Path) -> None:
    import json

    work = tmp_path / "repo"
    work.mkdir()
    result = _stage(work, {"dataset": "image_folder", "root": str(hostile), "image_size": 16})
    assert result.returncode == 0, result.stderr
    metrics = json.loads((work / "metrics" / "prepare.json").read_text())
    assert metrics == {
        "train_size": 14,
        "val_size": 2,
        "test_size": 4,
        "skipped": 5,
        "num_classes": 2,
    }
    assert (work / "data" / "prepared" / "meta.json").is_file()

    result = _stage(work, {"dataset": "image_folder", "root": str(hostile), "strict": True})
    assert result.returncode != 0
    assert "prepare.strict" in result.stderr and "Traceback" not in result.stderr
    assert (work / "data" / "prepared" / "train.pt").is_file()  # the previous store survives


def test_class_without_a_usable_image_is_dropped(tmp_path: Path) -> None:
    for i in range(6):
        _png(tmp_path / "img" / "a" / f"{i}.png", 30)
        _png(tmp_path / "img" / "c" / f"{i}.png", 220)
    (tmp_path / "img" / "b").mkdir()
    (tmp_path / "img" / "b" / "readme.txt").write_text("no pictures here")
    meta = prepare_dataset(_config(tmp_path / "img"), seed=0, out_dir=tmp_path / "p")
    assert meta["classes"] == ["a", "c"] and meta["dropped_classes"] == ["b"]
    test = load_split(tmp_path / "p", "test")
    means = test.data.flatten(1).float().mean(1).numpy()
    np.testing.assert_allclose(means, np.where(test.labels.numpy() == 0, 30, 220), atol=1)
