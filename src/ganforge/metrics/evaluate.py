"""Score a trained generator against held-out real data: every metric, one pass over the samples.

`evaluate_images` (image data: the scores registered in `IMAGE_METRICS`, each a function of the
`ImageSamples` one pass collects) and `evaluate_toy` (1-D Gaussian, 2-D ring) take plain objects
(modules, tensors, an `EvaluateConfig`) and return an `EvalResult`; the pipeline stage writes it
out. Generated samples are compared with the *test* split; the real-data floor is the FID of a
train subset against the same test split with the same features, i.e. the FID a perfect
generator would get at these sample sizes. Every score goes out with the sample counts behind it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.classifier import DomainClassifier
from ganforge.config import EvaluateConfig
from ganforge.metrics.copies import copy_fraction
from ganforge.metrics.coverage import class_share_ratios, conditional_accuracy
from ganforge.metrics.features import (
    ClassifierFeatureNet,
    FeatureNet,
    InceptionFeatureNet,
    iter_generated,
)
from ganforge.metrics.fid import frechet_distance, min_fid_samples
from ganforge.metrics.image_samples import ImageSamples, collect_samples, random_subset
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.parzen import parzen_score
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.toy import jensen_shannon_1d, mode_coverage, value_function
from ganforge.models import GeneratorSpec
from ganforge.plots import histogram_rows

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Flat metrics for eval.json, plus what the plots need."""

    metrics: dict[str, Any]
    samples: torch.Tensor  # the first generated samples (uint8 images or points), for a grid/plot
    class_rows: list[dict[str, Any]] = field(default_factory=list)  # class, generated, real
    real_points: torch.Tensor | None = None  # toy data: real test points, for a scatter plot


def build_feature_net(
    backend: str,
    classifier: DomainClassifier | None = None,
    inception_weights: str | None = None,
) -> FeatureNet:
    """The feature net of `backend` ("classifier" or "inception")."""
    if backend == "classifier":
        if classifier is None:
            raise ValueError("backend 'classifier' needs a trained domain classifier")
        return ClassifierFeatureNet(classifier)
    if backend == "inception":
        return InceptionFeatureNet(inception_weights)
    raise ValueError(f"unknown feature backend {backend!r}: use classifier or inception")


ImageMetric = Callable[[ImageSamples], dict[str, Any]]
# The scores of `evaluate_images`, in the order they appear in its result.
IMAGE_METRICS: dict[str, ImageMetric] = {}


def register_metric(fn: ImageMetric) -> ImageMetric:
    """Make `fn` one of the scores `evaluate_images` reports: its keys join the result."""
    IMAGE_METRICS[fn.__name__] = fn
    return fn


@register_metric
def fid(s: ImageSamples) -> dict[str, Any]:
    """FID against the test split, and its floor: the FID of a train subset in G's place."""
    value = frechet_distance(s.real.features, s.fake.features)
    floor = frechet_distance(s.floor_ref.features, s.real.features)
    return {
        "fid": value,
        "fid_floor": floor,
        "fid_over_floor": value / floor if floor > 0 else None,
    }


@register_metric
def kid(s: ImageSamples) -> dict[str, Any]:
    """KID against the test split: mean and std over random subsets."""
    c = s.config
    mean, std, size = kernel_inception_distance(
        s.real.features, s.fake.features, c.kid_subsets, c.kid_subset_size, s.seed
    )
    return {"kid_mean": mean, "kid_std": std, "kid_subset_size": size, "kid_subsets": c.kid_subsets}


@register_metric
def inception(s: ImageSamples) -> dict[str, Any]:
    """IS of the samples, and of real data on the generator's protocol.

    Real data: n samples in the same splits (the split size sets the marginal p(y) each KL is
    taken against). Train images, drawn with replacement when there are fewer than n: the test
    split alone (360 digits) would give splits of 36.
    """
    if not s.judges_classes:
        return {}
    n, splits = s.n, s.config.is_splits
    mean, std = inception_score(s.fake.logits, splits, s.seed)
    real_idx = (
        torch.randint(len(s.floor_ref), (n,), generator=torch.Generator().manual_seed(s.seed + 4))
        if len(s.floor_ref) < n
        else torch.arange(n)
    )
    real_mean, _ = inception_score(s.floor_ref.logits[real_idx], splits, s.seed)
    return {
        "is_mean": mean,
        "is_std": std,
        "is_splits": min(splits, n),
        "is_real_mean": real_mean,
        "is_real_samples": n,
        "is_real_source": "train",
    }


@register_metric
def precision_and_recall(s: ImageSamples) -> dict[str, Any]:
    """Precision/recall (k-NN manifolds) against the test split; and the same protocol with
    training images in the generator's place, what real data score (with a few hundred
    samples per side, recall of real data itself is well below 1)."""
    k, seed = s.config.pr_k, s.seed
    pr_n = min(len(s.real), s.n)
    real = s.real.features[random_subset(len(s.real), pr_n, seed + 3)]
    precision, recall = precision_recall(
        real, s.fake.features[random_subset(s.n, pr_n, seed + 2)], k
    )
    real_n = min(pr_n, len(s.floor_ref))
    precision_real, recall_real = precision_recall(
        s.real.features[random_subset(len(s.real), real_n, seed + 3)],
        s.floor_ref.features[random_subset(len(s.floor_ref), real_n, seed + 5)],
        k,
    )
    return {
        "precision": precision,
        "recall": recall,
        "pr_samples": pr_n,
        "pr_k": k,
        "precision_real": precision_real,
        "recall_real": recall_real,
    }


@register_metric
def classes(s: ImageSamples) -> dict[str, Any]:
    """Class coverage against the test labels; a conditional G's accuracy (labelled data)."""
    cov = s.coverage
    if cov is None or s.predicted is None:
        return {}
    m = {k: cov[k] for k in ("class_kl", "classes_covered", "num_classes", "class_entropy")}
    if s.spec.conditional and s.labels is not None:
        m["conditional_accuracy"] = conditional_accuracy(s.predicted, s.labels)
    return m


@register_metric
def class_shares(s: ImageSamples) -> dict[str, Any]:
    """Each class's share of the samples over its share of the training labels (the class
    distribution G was fitted to): the lowest, the highest, and all of them."""
    if s.predicted is None:
        return {}
    ratios = class_share_ratios(s.predicted, s.train[1], s.num_classes)
    valid = ~torch.isnan(ratios)
    lo = int(torch.where(valid, ratios, torch.inf).argmin())
    hi = int(torch.where(valid, ratios, -torch.inf).argmax())
    return {
        "class_share_min": ratios[lo].item(),
        "class_share_max": ratios[hi].item(),
        "class_share_min_class": s.class_names[lo],
        "class_share_max_class": s.class_names[hi],
        "class_share_ratios": [None if math.isnan(r) else round(r, 4) for r in ratios.tolist()],
    }


@register_metric
def copies(s: ImageSamples) -> dict[str, Any]:
    """How many samples are (near) copies of training images."""
    return copy_fraction(s.to_check, s.train[0], s.test[0])


@register_metric
def parzen(s: ImageSamples) -> dict[str, Any]:
    """The Parzen-window log-likelihood of the test split (an MLP G, σ chosen on val)."""
    if s.kept is None or s.val is None:
        return {}
    return {**parzen_score(s.kept, s.val[0], s.test[0]), "parzen_samples": s.n}


def evaluate_images(
    generator: nn.Module,
    spec: GeneratorSpec,
    net: FeatureNet,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: EvaluateConfig,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    classifier: DomainClassifier | None = None,
    class_names: list[str] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Every score of `IMAGE_METRICS` (FID and its floor, KID, IS, precision/recall, class
    coverage, copies; conditional accuracy and the Parzen window where they apply) of
    `generator` against the test split.

    `train`, `test`, `val` are (uint8 images [N, C, H, W], labels [N]). `classifier` judges class
    coverage; with the classifier backend it is the feature net's own classifier.
    """
    start = time.perf_counter()
    n = config.num_samples
    if n < min_fid_samples(net.feature_dim):
        raise ValueError(
            f"evaluate.num_samples = {n} is too small for {net.feature_dim}-d {net.name} "
            f"features: FID needs a full-rank covariance, use at least "
            f"{min_fid_samples(net.feature_dim)}"
        )
    if classifier is None and isinstance(net, ClassifierFeatureNet) and net.judges_classes:
        classifier = net.classifier
    s = collect_samples(
        generator, spec, net, train, test, config, val, classifier, class_names, seed, device
    )
    m: dict[str, Any] = {
        "backend": net.name,
        "feature_dim": net.feature_dim,
        "num_samples": n,
        "real_samples": len(s.real),
        "floor_train_samples": len(s.floor_ref),
        "seed": seed,
    }
    for score in IMAGE_METRICS.values():
        m.update(score(s))
    m["eval_seconds"] = time.perf_counter() - start
    m.update(s.seconds)
    log.info("evaluation took %.1f s", m["eval_seconds"])
    return EvalResult(metrics=m, samples=s.first, class_rows=_class_rows(s))


def _class_rows(s: ImageSamples) -> list[dict[str, Any]]:
    """Per class: generated and real counts (labelled data), for the class plot."""
    if s.coverage is None:
        return []
    pairs = zip(s.coverage["generated"], s.coverage["real"], strict=True)
    return [
        {"class": s.class_names[k], "generated": g, "real": r} for k, (g, r) in enumerate(pairs)
    ]


def evaluate_toy(
    generator: nn.Module,
    spec: GeneratorSpec,
    meta: dict[str, Any],
    test: tuple[torch.Tensor, torch.Tensor],
    config: EvaluateConfig,
    discriminator: nn.Module | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Ring/grid: modes covered, high-quality fraction, per-mode shares and the rule.

    1-D Gaussian: JSD and V(D, G) vs −log 4.
    """
    start = time.perf_counter()
    n = config.num_samples
    fake = torch.cat(
        [x for x, _ in iter_generated(generator, spec, n, config.batch_size, seed, device)]
    )
    real = test[0].float()
    m: dict[str, Any] = {"num_samples": n, "real_samples": len(real), "seed": seed}
    dataset = meta.get("dataset")
    if dataset in ("ring_2d", "grid_2d"):
        cov = mode_coverage(fake, meta["modes"], float(meta["mode_std"]))
        m["modes_covered"], m["num_modes"] = cov["modes_covered"], cov["num_modes"]
        m["high_quality_fraction"] = cov["high_quality_fraction"]
        m["mode_rule"], m["mode_shares"] = cov["mode_rule"], cov["mode_shares"]
        real_cov = mode_coverage(real, meta["modes"], float(meta["mode_std"]))
        m["real_high_quality_fraction"] = real_cov["high_quality_fraction"]
        m["real_modes_covered"] = real_cov["modes_covered"]
        rows = [
            {"class": f"mode{k}", "generated": g, "real": r}
            for k, (g, r) in enumerate(
                zip(cov["samples_per_mode"], real_cov["samples_per_mode"], strict=True)
            )
        ]
    elif dataset == "gaussian_1d":
        mean, std = meta.get("mean"), meta.get("std")
        m["jsd"] = jensen_shannon_1d(fake, real, mean, std)
        m["jsd_max"] = math.log(2.0)
        m["fake_mean"], m["fake_std"] = fake.mean().item(), fake.std().item()
        rows = histogram_rows(fake, real)
    else:
        raise ValueError(f"no toy measures for data set {dataset!r}")
    if discriminator is not None and not spec.conditional:
        with torch.inference_mode():
            v = value_function(discriminator.to(device), real.to(device), fake.to(device))
        m.update({f"v_{k}" if not k.startswith("d_") else k: val for k, val in v.items()})
    m["eval_seconds"] = time.perf_counter() - start
    return EvalResult(metrics=m, samples=fake, class_rows=rows, real_points=real)
