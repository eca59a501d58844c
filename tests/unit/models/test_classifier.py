"""The domain classifier: accuracy on digits, shapes at any size, saving and loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from ganforge.classifier import (
    DomainClassifier,
    NoClassifierError,
    accuracy,
    load_classifier,
    save_classifier,
    save_placeholder,
    train_classifier,
)
from ganforge.config import ClassifierConfig
from ganforge.data import load_split


@pytest.mark.parametrize("channels,size", [(1, 8), (1, 28), (3, 32), (3, 64)])
def test_features_and_logits_at_any_size(channels: int, size: int) -> None:
    net = DomainClassifier(channels, size, num_classes=7, width=8, feature_dim=16).eval()
    x = torch.randint(0, 256, (3, channels, size, size), dtype=torch.uint8)
    feats, logits = net.features_and_logits(x)
    assert feats.shape == (3, 16) and logits.shape == (3, 7)
    assert torch.allclose(net(x), logits)
    assert torch.allclose(net(x.float() / 127.5 - 1), logits, atol=1e-5)  # uint8 == [-1, 1]


def test_trains_to_97_percent_on_digits_at_defaults_and_round_trips(
    prepared_digits: Path, tmp_path: Path
) -> None:
    train, val, test = (load_split(prepared_digits, s) for s in ("train", "val", "test"))
    result = train_classifier(
        train.data, train.labels, 10, ClassifierConfig(), val.data, val.labels, seed=0
    )
    acc = accuracy(result.model, test.data, test.labels)
    assert acc >= 0.97, acc
    assert result.val_accuracy is not None and result.val_accuracy >= 0.95
    assert 1 <= result.best_epoch <= ClassifierConfig().epochs
    path = tmp_path / "classifier.pt"
    save_classifier(path, result.model, {"note": "test"})
    loaded, extra = load_classifier(path)
    assert extra == {"note": "test"} and loaded.feature_dim == 128
    x = test.data[:20]
    assert torch.equal(loaded(x), result.model(x))


def test_training_is_deterministic_for_a_seed(prepared_digits_16: Path) -> None:
    train = load_split(prepared_digits_16, "train")
    cfg = ClassifierConfig(epochs=1, width=8, feature_dim=16)
    a = train_classifier(train.data[:300], train.labels[:300], 10, cfg, seed=3).model
    b = train_classifier(train.data[:300], train.labels[:300], 10, cfg, seed=3).model
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_unlabelled_data_is_refused_and_a_placeholder_explains_itself(tmp_path: Path) -> None:
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="unlabelled"):
        train_classifier(x, torch.full((4,), -1), 10, ClassifierConfig(epochs=1))
    path = tmp_path / "classifier.pt"
    save_placeholder(path, "celeba has no class labels")
    with pytest.raises(NoClassifierError, match="celeba has no class labels.*inception"):
        load_classifier(path)
    with pytest.raises(FileNotFoundError, match="dvc repro classifier"):
        load_classifier(tmp_path / "missing.pt")


def test_classifier_stage_writes_model_and_metrics(
    prepared_digits_16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import yaml

    from pipeline import classifier as stage

    monkeypatch.chdir(tmp_path)
    shutil.copytree(prepared_digits_16, "data/prepared")
    Path("params.yaml").write_text(yaml.safe_dump({"classifier": {"epochs": 2, "width": 8}}))
    stage.main()
    metrics = json.loads(Path("reports/classifier.json").read_text())
    assert metrics["trained"] and metrics["epochs"] == 2
    assert 0 <= metrics["test_accuracy"] <= 1 and 0 <= metrics["val_accuracy"] <= 1
    model, extra = load_classifier("models/classifier.pt")
    assert extra["config"]["width"] == 8 and extra["class_names"][:2] == ["0", "1"]


def test_classifier_stage_on_points_writes_a_note(
    prepared_ring: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from pipeline import classifier as stage

    monkeypatch.chdir(tmp_path)
    shutil.copytree(prepared_ring, "data/prepared")
    Path("params.yaml").write_text("seed: 0\n")
    stage.main()
    metrics = json.loads(Path("reports/classifier.json").read_text())
    assert metrics["trained"] is False and "points" in metrics["note"]
    with pytest.raises(NoClassifierError):
        load_classifier("models/classifier.pt")


def test_rotation_task_turns_each_image_four_ways() -> None:
    import torch

    from ganforge.classifier import rotation_task

    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.uint8).reshape(2, 1, 3, 3)
    turned, labels = rotation_task(x)
    assert turned.shape == (8, 1, 3, 3) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(turned[:2], x) and torch.equal(turned[2], torch.rot90(x[0], 1, (1, 2)))
    assert torch.equal(turned[6], torch.rot90(x[0], 3, (1, 2)))
    with pytest.raises(ValueError, match="square images"):
        rotation_task(torch.zeros(2, 1, 3, 4, dtype=torch.uint8))


def test_classifier_stage_on_unlabelled_images_learns_rotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image folder without classes still gets an offline feature net: a rotation classifier."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from ganforge.config import PrepareConfig
    from ganforge.data import prepare_dataset
    from pipeline import classifier as stage

    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    for i, image in enumerate(load_digits().images[:80]):
        pixels = (image * 16).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / "images" / f"{i:03d}.png")
    folder = PrepareConfig(dataset="image_folder", root=str(tmp_path / "images"), image_size=16)
    prepare_dataset(folder, seed=0, out_dir=tmp_path / "data/prepared")
    Path("params.yaml").write_text(yaml.safe_dump({"classifier": {"epochs": 2, "width": 8}}))
    stage.main()
    metrics = json.loads(Path("reports/classifier.json").read_text())
    assert metrics["trained"] and metrics["task"] == "rotation" and metrics["num_classes"] == 4
    model, _ = load_classifier("models/classifier.pt")
    assert model.task == "rotation" and model.config()["task"] == "rotation"

    # its features judge FID; its logits are rotations, not classes: no IS, no class scores
    from ganforge.config import EvaluateConfig
    from ganforge.metrics import evaluate_images
    from ganforge.metrics.evaluate import build_feature_net
    from ganforge.models import GeneratorSpec, build_generator

    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=4, ndf=4)
    train, test = load_split("data/prepared", "train"), load_split("data/prepared", "test")
    cfg = EvaluateConfig(num_samples=300, batch_size=100, kid_subset_size=10, copy_samples=10)
    result = evaluate_images(
        build_generator(spec).eval(), spec, build_feature_net("classifier", model),
        (train.data, train.labels), (test.data, test.labels), cfg,
    )  # fmt: skip
    assert result.metrics["fid"] > 0 and "precision" in result.metrics
    assert not {"is_mean", "classes_covered", "class_share_min"} & set(result.metrics)
