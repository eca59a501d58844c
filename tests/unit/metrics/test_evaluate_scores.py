"""metrics/evaluate.py: `evaluate_images` composes the registered scores; each equals its metric
computed by hand on the same samples, the keys keep their order, and a new score is one function.
"""

from __future__ import annotations

import pytest
import torch

from ganforge.classifier import DomainClassifier
from ganforge.config import EvaluateConfig
from ganforge.metrics import (
    ClassifierFeatureNet,
    class_coverage,
    class_share_ratios,
    conditional_accuracy,
    copy_fraction,
    evaluate_images,
    extract_features,
    frechet_distance,
    inception_score,
    iter_generated,
    kernel_inception_distance,
    precision_recall,
    sample_labels,
)
from ganforge.metrics import evaluate as evaluate_module
from ganforge.metrics.evaluate import ImageSamples, register_metric
from ganforge.models import GeneratorSpec, build_generator

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), num_classes=4, ngf=8)
N, BATCH, SEED = 120, 40, 1  # as many train and test images as samples: no subsets drawn
CONFIG = EvaluateConfig(
    num_samples=N, batch_size=BATCH, kid_subset_size=40, kid_subsets=4, is_splits=3,
    copy_samples=30, device="cpu",
)  # fmt: skip
KEYS = [
    "backend", "feature_dim", "num_samples", "real_samples", "floor_train_samples", "seed",
    "fid", "fid_floor", "fid_over_floor", "kid_mean", "kid_std", "kid_subset_size", "kid_subsets",
    "is_mean", "is_std", "is_splits", "is_real_mean", "is_real_samples", "is_real_source",
    "precision", "recall", "pr_samples", "pr_k", "precision_real", "recall_real",
    "class_kl", "classes_covered", "num_classes", "class_entropy", "conditional_accuracy",
    "class_share_min", "class_share_max", "class_share_min_class", "class_share_max_class",
    "class_share_ratios", "copy_fraction", "copy_threshold", "copy_percentile", "copy_samples",
    "eval_seconds", "real_feature_seconds", "generate_feature_seconds",
]  # fmt: skip


@pytest.fixture(scope="module")
def setup():
    gen = torch.Generator().manual_seed(5)
    x_train, x_test = torch.randint(0, 256, (2, N, 1, 16, 16), dtype=torch.uint8, generator=gen)
    labels = torch.arange(N) % 4
    torch.manual_seed(0)
    net = ClassifierFeatureNet(DomainClassifier(1, 16, 4, width=8, feature_dim=16).eval())
    G = build_generator(SPEC).eval()
    return G, net, (x_train, labels), (x_test, labels)


def evaluate(setup):
    G, net, train, test = setup
    return evaluate_images(G, SPEC, net, train, test, CONFIG, seed=SEED)


def test_each_score_equals_its_metric_computed_by_hand(setup) -> None:
    G, net, train, test = setup
    result = evaluate(setup)
    m = result.metrics
    assert list(m) == KEYS
    real = extract_features(net, test[0], BATCH)
    floor = extract_features(net, train[0], BATCH)
    asked = sample_labels(N, torch.bincount(train[1]).double(), torch.Generator().manual_seed(SEED))
    batches = iter_generated(G, SPEC, N, BATCH, SEED, "cpu", asked)
    images = torch.cat([x for x, _ in batches])
    fake = extract_features(net, images, BATCH)
    assert m["fid"] == frechet_distance(real.features, fake.features)
    assert m["fid_floor"] == frechet_distance(floor.features, real.features)
    kid = kernel_inception_distance(real.features, fake.features, 4, 40, SEED)
    assert (m["kid_mean"], m["kid_std"], m["kid_subset_size"]) == kid
    assert (m["is_mean"], m["is_std"]) == inception_score(fake.logits, 3, SEED)
    assert m["is_real_mean"] == inception_score(floor.logits, 3, SEED)[0]
    assert (m["precision"], m["recall"]) == precision_recall(real.features, fake.features, 3)
    pr_real = precision_recall(real.features, floor.features, 3)
    assert (m["precision_real"], m["recall_real"]) == pr_real
    predicted = fake.logits.argmax(1)
    cov = class_coverage(predicted, test[1], 4, CONFIG.coverage_min_share)
    assert [m[k] for k in KEYS[25:29]] == [cov[k] for k in KEYS[25:29]]
    assert m["conditional_accuracy"] == conditional_accuracy(predicted, asked)
    ratios = class_share_ratios(predicted, train[1], 4)
    assert m["class_share_ratios"] == [round(r, 4) for r in ratios.tolist()]
    assert (m["class_share_min"], m["class_share_max"]) == (
        ratios.min().item(),
        ratios.max().item(),
    )
    copies = copy_fraction(images[:30], train[0], test[0])
    assert {k: m[k] for k in copies} == copies
    pairs = zip(cov["generated"], cov["real"], strict=True)
    assert result.class_rows == [
        {"class": str(k), "generated": g, "real": r} for k, (g, r) in enumerate(pairs)
    ]
    assert torch.equal(result.samples, images[:BATCH])  # the grid: the first batch, up to 64


def test_a_new_score_is_one_function(setup, monkeypatch) -> None:
    monkeypatch.setattr(evaluate_module, "IMAGE_METRICS", dict(evaluate_module.IMAGE_METRICS))

    @register_metric
    def feature_mean(s: ImageSamples) -> dict[str, float]:
        return {"feature_mean": s.fake.features.mean().item()}

    m = evaluate(setup).metrics
    assert list(m) == KEYS[:-3] + ["feature_mean"] + KEYS[-3:]
