"""torchvision sources fed tiny files in their real on-disk formats, and their error messages."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.config import PrepareConfig
from ganforge.data import DataError, load_meta, load_split, prepare_dataset


def _existence_only(fpath: str, md5: str | None = None) -> bool:
    return os.path.isfile(fpath)


@pytest.fixture
def skip_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our synthetic files cannot match the real archives' md5 sums: check existence only.

    Only torchvision's checksum helper is replaced, in the modules of the classes under test;
    everything else (file names, folder layout, parsing) is torchvision's own code.
    """
    import torchvision.datasets.celeba as celeba
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", _existence_only)
    monkeypatch.setattr(celeba, "check_integrity", _existence_only)


def _idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, n, h, w) + images.astype(np.uint8).tobytes())


def _idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def _labelled_images(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Images whose constant value encodes their label (20 * label), so pairs can be checked."""
    return np.broadcast_to(
        (labels * 20).astype(np.uint8).reshape(-1, *[1] * len(shape)), (len(labels), *shape)
    ).copy()


def _write_mnist(
    root: Path, folder: str, train_per_class: int = 6, test_per_class: int = 2
) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), per_class)
        _idx_images(raw / f"{prefix}-images-idx3-ubyte", _labelled_images(labels, (28, 28)))
        _idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)


def _check_label_pixels(store: Path, split: str) -> None:
    part = load_split(store, split)
    values = part.data.flatten(1).float().mean(1).numpy()
    np.testing.assert_allclose(values, part.labels.numpy() * 20, atol=0.5)


@pytest.mark.parametrize(
    ("dataset", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_family_reads_idx_files_with_official_test(
    tmp_path: Path, dataset: str, folder: str
) -> None:
    _write_mnist(tmp_path / "raw", folder)
    config = PrepareConfig(dataset=dataset, root=str(tmp_path / "raw"), image_size=32)
    meta = prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")
    assert meta["splits"] == {"train": 54, "val": 6, "test": 20}
    assert meta["num_classes"] == 10 and len(meta["classes"]) == 10
    assert meta["split_method"].startswith("official")
    test = load_split(tmp_path / "prepared", "test")
    assert test.data.shape == (20, 1, 32, 32)
    assert sorted(test.labels.tolist()) == sorted(np.repeat(np.arange(10), 2).tolist())
    val = load_split(tmp_path / "prepared", "val")
    assert sorted(val.labels.tolist()) == [0, 1, 2, 3, 4, 5]  # 6 of 10 classes, one each
    for split in ("train", "val", "test"):
        _check_label_pixels(tmp_path / "prepared", split)


def test_mnist_missing_files_say_where_and_how(tmp_path: Path) -> None:
    config = PrepareConfig(dataset="mnist", root=str(tmp_path / "raw"))
    with pytest.raises(DataError) as info:
        prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")
    message = str(info.value)
    assert str(tmp_path / "raw" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "prepare.download: true" in message
    assert not (tmp_path / "prepared").exists()


def _write_cifar(root: Path, per_batch: int = 10) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.permutation(np.arange(per_batch) % 10)
        # CIFAR rows: 1024 red, then green, then blue values; constant 20 * label here
        data = np.repeat((labels * 20).astype(np.uint8)[:, None], 3072, axis=1)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels.tolist(), "batch_label": name}, f)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch}, f)


def test_cifar10_reads_pickled_batches(tmp_path: Path, skip_md5: None) -> None:
    _write_cifar(tmp_path / "raw")
    config = PrepareConfig(dataset="cifar10", root=str(tmp_path / "raw"), image_size=16, channels=3)
    meta = prepare_dataset(config, seed=1, out_dir=tmp_path / "prepared")
    assert meta["splits"] == {"train": 45, "val": 5, "test": 10}
    assert meta["classes"][0] == "airplane" and meta["num_classes"] == 10
    train = load_split(tmp_path / "prepared", "train")
    assert train.data.shape == (45, 3, 16, 16)
    for split in ("train", "val", "test"):
        _check_label_pixels(tmp_path / "prepared", split)


def test_cifar10_missing_and_corrupt_files_are_explained(tmp_path: Path) -> None:
    config = PrepareConfig(dataset="cifar10", root=str(tmp_path / "raw"))
    with pytest.raises(
        DataError, match=r"cifar-10-batches-py.*data_batch_1.*cifar-10-python\.tar\.gz"
    ):
        prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")
    _write_cifar(tmp_path / "raw")  # present, but not the real archive's bytes: md5 fails
    with pytest.raises(DataError, match="rejected"):
        prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")


def _write_celeba(root: Path) -> list[str]:
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 13)]
    partition = [0] * 7 + [1] * 2 + [2] * 3
    rng = np.random.default_rng(0)
    for name in names:
        pixels = rng.integers(0, 255, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=90)
    (images / names[3]).write_bytes(b"")  # a broken download
    count = f"{len(names)}\n"
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"{n} {p}\n" for n, p in zip(names, partition, strict=True))
    )
    (folder / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    (folder / "list_attr_celeba.txt").write_text(
        count + "Smiling Young\n" + "".join(f"{n} 1 -1\n" for n in names)
    )
    (folder / "list_bbox_celeba.txt").write_text(
        count + "image_id x_1 y_1 width height\n" + "".join(f"{n} 1 2 3 4\n" for n in names)
    )
    (folder / "list_landmarks_align_celeba.txt").write_text(
        count + "lefteye_x lefteye_y\n" + "".join(f"{n} 69 109\n" for n in names)
    )
    return names


def test_celeba_uses_official_partition_unlabelled(tmp_path: Path, skip_md5: None) -> None:
    _write_celeba(tmp_path / "raw")
    config = PrepareConfig(dataset="celeba", root=str(tmp_path / "raw"), image_size=32, channels=3)
    meta = prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")
    assert meta["splits"] == {"train": 6, "val": 2, "test": 3}  # one empty train JPEG skipped
    assert meta["classes"] == [] and meta["num_classes"] == 0
    assert meta["skipped"]["count"] == 1
    assert meta["skipped"]["examples"][0]["path"].endswith("000004.jpg")
    train = load_split(tmp_path / "prepared", "train")
    assert train.data.shape == (6, 3, 32, 32)
    assert (train.labels == -1).all()
    assert load_meta(tmp_path / "prepared")["split_method"] == "official"


def test_celeba_missing_files_are_listed(tmp_path: Path) -> None:
    (tmp_path / "raw" / "celeba").mkdir(parents=True)
    config = PrepareConfig(dataset="celeba", root=str(tmp_path / "raw"))
    with pytest.raises(DataError, match=r"list_eval_partition\.txt.*img_align_celeba"):
        prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")


def test_mnist_gzipped_downloads_get_a_gunzip_hint(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / f"{name}.gz").write_bytes(b"\x1f\x8b")
    config = PrepareConfig(dataset="mnist", root=str(tmp_path / "raw"))
    with pytest.raises(DataError, match="gunzip"):
        prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")


def test_grid_2d_has_25_modes_on_the_papers_grid(tmp_path: Path) -> None:
    meta = prepare_dataset(
        PrepareConfig(dataset="grid_2d", num_points=5000), seed=0, out_dir=tmp_path / "grid"
    )
    modes = np.array(meta["modes"])
    assert modes.shape == (25, 2) and meta["mode_std"] == 0.02 and meta["num_classes"] == 25
    # every combination of {-4, -2, 0, 2, 4} for x and y, once
    assert sorted(map(tuple, modes.tolist())) == [
        (float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)
    ]
    train = load_split(tmp_path / "grid", "train")
    points, labels = train.data.numpy(), train.labels.numpy()
    assert np.linalg.norm(points - modes[labels], axis=1).max() < 5 * 0.02
    counts = np.bincount(labels, minlength=25)
    assert counts.min() > len(labels) / 25 * 0.7  # equal mixture weights
