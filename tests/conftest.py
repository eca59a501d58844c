"""Fixtures shared by every test module: tiny prepared stores, built once per session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_training import tiny_images

from ganforge.config import PrepareConfig
from ganforge.data import prepare_dataset


def _prepare(factory: pytest.TempPathFactory, name: str, seed: int = 0, **options) -> Path:
    out = factory.mktemp(name) / "prepared"
    prepare_dataset(PrepareConfig(**options), seed=seed, out_dir=out)
    return out


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn digits at 32x32, 1 channel (1257 train / 180 val / 360 test); the store dir."""
    return _prepare(tmp_path_factory, "digits32", dataset="digits", image_size=32, channels=1)


@pytest.fixture(scope="session")
def prepared_digits_16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn digits at 16x16, 1 channel: for the fastest model tests."""
    return _prepare(tmp_path_factory, "digits16", dataset="digits", image_size=16, channels=1)


@pytest.fixture(scope="session")
def prepared_digits_rgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn digits at 16x16 with 3 (repeated) channels: for RGB code paths."""
    return _prepare(tmp_path_factory, "digits_rgb", dataset="digits", image_size=16, channels=3)


@pytest.fixture(scope="session")
def prepared_ring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-D ring of 8 Gaussians, 2000 points (1400 train / 200 val / 400 test)."""
    return _prepare(tmp_path_factory, "ring", dataset="ring_2d", num_points=2000)


@pytest.fixture(scope="session")
def prepared_gaussian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1-D Gaussian N(4, 0.5²), 2000 points."""
    return _prepare(tmp_path_factory, "gauss", dataset="gaussian_1d", num_points=2000)


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """`tiny_training.tiny_images()`: 160 uint8 16×16 noise images, 4 classes, once a module."""
    return tiny_images()


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny models: one thread is faster on a shared 2-core box, and results are the same."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
               "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_mlflow_uris() -> Iterator[None]:
    """Undo the process-wide MLflow URIs a test (or a stage run in-process) set.

    `mlflow.set_tracking_uri` / `set_registry_uri` write module globals *and* environment
    variables; left behind, a later test's client or subprocess talks to a dead temp store.
    """
    saved = {key: os.environ.get(key) for key in _MLFLOW_ENV}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None clears it
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
