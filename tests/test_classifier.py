"""The domain classifier: accuracy on digits, shapes at any size, saving and loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

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
