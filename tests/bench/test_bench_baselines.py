"""bench/baselines.py: Gaussian mixtures in PCA space, scored by the stages' own evaluators."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from tiny_repo import TINY, merge

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import baselines  # noqa: E402


def test_generator_draws_exact_mixture_samples() -> None:
    """z ~ N(0, I) through GMMGenerator gives each component its weight, mean and covariance."""
    weights = np.array([0.2, 0.8])
    means = np.array([[-3.0, 0.0], [3.0, 1.0]])
    covs = np.array([[[0.3, 0.1], [0.1, 0.2]], [[0.5, -0.2], [-0.2, 0.4]]])
    basis = np.eye(2, 4)  # PCA codes -> the first two of four pixels
    offset = np.array([0.0, 0.0, 0.25, -0.5])
    gen = baselines.GMMGenerator(weights, means, np.linalg.cholesky(covs), basis, offset, (1, 2, 2))
    z = torch.randn(40000, gen.nz, generator=torch.Generator().manual_seed(0))
    out = gen(z).reshape(len(z), 4).double()
    assert gen.nz == 3 and out.dtype == torch.float64 and torch.all(out[:, 2:] == out[0, 2:])
    assert torch.allclose(out[0, 2:], torch.tensor(offset[2:]))
    first = out[:, 0] < 0
    assert abs(first.double().mean().item() - 0.2) < 0.01
    for k, part in enumerate((out[first, :2], out[~first, :2])):
        assert torch.allclose(part.mean(0), torch.tensor(means[k]), atol=0.03)
        assert torch.allclose(torch.cov(part.T), torch.tensor(covs[k]), atol=0.03)


def test_fit_gmm_learns_clustered_images() -> None:
    """Three prototype images with pixel noise, in unequal shares: a 3-component fit samples
    each prototype in its share, in the training images' value range."""
    from ganforge.data import to_uint8

    rng = np.random.default_rng(0)
    protos = rng.integers(0, 256, size=(3, 1, 8, 8))
    which = rng.choice(3, size=600, p=[0.5, 0.3, 0.2])
    images = np.clip(protos[which] + rng.normal(0, 6, size=(600, 1, 8, 8)), 0, 255)
    gen = baselines.fit_gmm(torch.from_numpy(images.astype(np.uint8)), 3, pca_dim=5, seed=0)
    assert gen.dim == 5 and gen.nz == 6 and gen.shape == (1, 8, 8)
    z = torch.randn(3000, gen.nz, generator=torch.Generator().manual_seed(1))
    samples = to_uint8(gen(z)).double().reshape(3000, -1)
    dist = torch.cdist(samples, torch.from_numpy(protos.reshape(3, -1)).double())
    nearest = dist.argmin(1)
    shares = torch.bincount(nearest, minlength=3).double() / 3000
    assert torch.allclose(shares, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), atol=0.04)
    assert dist.min(1).values.mean() < 6 * 8 * 1.2  # ~ the noise: 6 per pixel over 64 pixels


@pytest.fixture()
def workspace(prepared_digits_16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace as the bench leaves one after prepare and classifier: tiny params, the 16 px
    digits store and a classifier trained by the real stage (run in-process)."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    tiny = {k: TINY[k] for k in ("prepare", "classifier", "evaluate")}
    params = merge(base, {**tiny, "train": {"fid_samples": 60}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(prepared_digits_16, tmp_path / "data" / "prepared")
    monkeypatch.chdir(tmp_path)
    from pipeline import classifier

    classifier.main()
    assert (tmp_path / "models" / "classifier.pt").is_file()
    return tmp_path


def test_baselines_score_with_the_stages_evaluators(workspace: Path, one_thread: None) -> None:
    """The rows are the evaluate stage's metrics at its sample count and seed, and fid_val is
    what the train stage's own validation monitor gives the same mixture."""
    from ganforge.classifier import load_classifier
    from ganforge.data import load_meta, load_split
    from pipeline import train_inputs
    from pipeline.params import load_params

    rows = baselines.gmm_baselines(components=(2, 4), pca_dim=8)
    params = load_params()
    assert [r["baseline"] for r in rows] == ["gmm2", "gmm4"]
    for row in rows:
        assert row["dataset"] == "digits" and row["pca_dim"] == 8
        assert row["num_samples"] == params.evaluate.num_samples == TINY["evaluate"]["num_samples"]
        assert row["seed"] == params.seed and row["backend"] == "classifier"
        assert math.isfinite(row["fid"]) and row["fid"] > row["fid_floor"] > 0
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
        assert 1 <= row["classes_covered"] <= 10 and "copy_fraction" in row
        assert row["fid_val_samples"] == 60 and math.isfinite(row["fid_val"])

    # The train stage's monitor, built by the stage, scoring the same (refitted) mixture.
    meta = load_meta(Path("data/prepared"))
    labels = load_split(Path("data/prepared"), "train").labels
    config = baselines.train_config(params, meta)
    monitor = train_inputs.quality_monitor(params, config, meta, labels, "cpu")
    assert monitor is not None
    images = load_split(Path("data/prepared"), "train", mmap=False).data
    gen = baselines.fit_gmm(images, 4, pca_dim=8, seed=params.seed)
    spec = baselines.gmm_spec(gen)
    stub = SimpleNamespace(spec=spec, ema=None, g_core=gen, device="cpu", step=0)
    value, _ = monitor.score(stub)
    assert value == pytest.approx(rows[1]["fid_val"], rel=1e-6)
    # and the classifier it used is the workspace's
    assert load_classifier(Path("models/classifier.pt"))[0].feature_dim == 16


def test_unlabelled_data_without_feature_net_stops_with_the_reason(
    workspace: Path, one_thread: None
) -> None:
    from ganforge.classifier import save_placeholder

    save_placeholder(Path("models/classifier.pt"), "image_folder has no class labels")
    with pytest.raises(SystemExit, match="no class labels"):
        baselines.gmm_baselines(components=(2,), pca_dim=8)
