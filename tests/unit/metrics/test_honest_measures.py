"""Honest evaluation: full-rank FID only, real IS on the generator's protocol, class shares,
and the copy check (pixel-L2 nearest training image vs test-to-train distances)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge.classifier import train_classifier
from ganforge.config import ClassifierConfig, EvaluateConfig
from ganforge.data import load_split
from ganforge.metrics import (
    ClassifierFeatureNet,
    class_share_ratios,
    copy_fraction,
    evaluate_images,
    nearest_distances,
)
from ganforge.models import GeneratorSpec

SMALL = {"batch_size": 250, "kid_subset_size": 100, "kid_subsets": 5, "copy_samples": 500}


@pytest.fixture(scope="module")
def splits(prepared_digits_16: Path):
    return {s: load_split(prepared_digits_16, s) for s in ("train", "val", "test")}


@pytest.fixture(scope="module")
def classifier(splits):
    train = splits["train"]
    cfg = ClassifierConfig(epochs=4, width=16, feature_dim=32, lr=0.01, batch_size=128)
    return train_classifier(train.data, train.labels, 10, cfg, seed=0).model


class Replay(nn.Module):
    """A 'generator' that replays stored images: z picks one (a perfect copier)."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bank", images.float() / 127.5 - 1.0)

    def forward(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        return self.bank[(z[:, 0].abs() * 1e4).long() % len(self.bank)]


SPEC = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8)


def _evaluate(splits, classifier, bank: torch.Tensor, **options):
    cfg = EvaluateConfig(**{**SMALL, **options})
    pair = {s: (x.data, x.labels) for s, x in splits.items()}
    net = ClassifierFeatureNet(classifier)
    return evaluate_images(Replay(bank), SPEC, net, pair["train"], pair["test"], cfg).metrics


def test_num_samples_too_small_for_a_full_rank_covariance_is_refused(splits, classifier) -> None:
    with pytest.raises(ValueError, match=r"evaluate.num_samples = 20 .* at least 33"):
        _evaluate(splits, classifier, splits["train"].data, num_samples=20)


def test_real_inception_score_uses_the_generators_protocol(splits, classifier) -> None:
    """A generator that replays the training set must score the IS of real data: same sample
    count, same splits (on 360 test images in splits of 36 the two differed by ~15 %)."""
    m = _evaluate(splits, classifier, splits["train"].data, num_samples=2000, is_splits=4)
    assert m["is_real_samples"] == 2000 and m["is_splits"] == 4
    assert m["is_mean"] == pytest.approx(m["is_real_mean"], rel=0.03)


def test_class_share_ratios_by_hand() -> None:
    predicted = torch.tensor([0, 0, 1, 1, 1, 1])
    data = torch.tensor([0, 1, 0, 1])  # half and half; class 2 absent from the data
    ratios = class_share_ratios(predicted, data, 3)
    assert ratios[:2].tolist() == pytest.approx([2 / 3, 4 / 3])
    assert math.isnan(ratios[2])


def test_class_shares_in_eval_metrics(splits, classifier) -> None:
    train = splits["train"]
    balanced = _evaluate(splits, classifier, train.data, num_samples=1000)
    # the small test classifier (~88 % accurate) mixes up a few classes: loose bounds here
    assert 0.3 < balanced["class_share_min"] <= 1 <= balanced["class_share_max"] < 2
    only_threes = _evaluate(splits, classifier, train.data[train.labels == 3], num_samples=1000)
    assert only_threes["class_share_min"] < 0.1 and only_threes["class_share_max"] > 4
    assert len(only_threes["class_share_ratios"]) == 10


def test_copy_fraction_of_copies_fresh_samples_and_noise(splits) -> None:
    train, test = splits["train"].data, splits["test"].data
    assert copy_fraction(train[:300], train, test)["copy_fraction"] == 1.0
    fresh = copy_fraction(test, train, test)  # real unseen data: ~5 % by construction
    assert fresh["copy_fraction"] == pytest.approx(0.05, abs=1.5 / len(test))
    noise = torch.randint(0, 256, (200, 1, 16, 16), dtype=torch.uint8)
    assert copy_fraction(noise, train, test)["copy_fraction"] == 0.0


def test_nearest_distances_agree_with_cdist() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (37, 1, 4, 4), dtype=torch.uint8, generator=gen)
    b = torch.randint(0, 256, (23, 1, 4, 4), dtype=torch.uint8, generator=gen)
    expected = torch.cdist(a.flatten(1).double(), b.flatten(1).double()).min(1).values
    assert torch.allclose(nearest_distances(a, b, chunk=5), expected)


def test_a_copying_generator_is_caught_in_eval_metrics(splits, classifier) -> None:
    m = _evaluate(splits, classifier, splits["train"].data, num_samples=600)
    assert m["copy_fraction"] == 1.0 and m["copy_samples"] == 500 and m["copy_threshold"] > 0
