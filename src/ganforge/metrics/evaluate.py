"""Score a trained generator against held-out real data: every metric, one pass over the samples.

`evaluate_images` (image data) and `evaluate_toy` (1-D Gaussian, 2-D ring) take plain objects
(modules, tensors, an `EvaluateConfig`) and return an `EvalResult`; the pipeline stage writes it
out. Generated samples are compared with the *test* split; the real-data floor is the FID of a
train subset against the same test split with the same features, i.e. the FID a perfect
generator would get at these sample sizes. Every score goes out with the sample counts behind it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.classifier import DomainClassifier, predict_logits
from ganforge.config import EvaluateConfig
from ganforge.metrics.copies import copy_fraction
from ganforge.metrics.coverage import class_coverage, class_share_ratios, conditional_accuracy
from ganforge.metrics.features import (
    ClassifierFeatureNet,
    FeatureNet,
    FeatureSet,
    InceptionFeatureNet,
    extract_features,
    iter_generated,
    sample_labels,
)
from ganforge.metrics.fid import frechet_distance, min_fid_samples
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.parzen import parzen_score
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.toy import jensen_shannon_1d, mode_coverage, value_function
from ganforge.models import GeneratorSpec
from ganforge.plots import histogram_rows

log = logging.getLogger(__name__)

GRID_SAMPLES = 64


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


def _subset(n: int, k: int, seed: int) -> torch.Tensor:
    """A deterministic random subset of k of n indices (all of them, in order, when k ≥ n)."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


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
    """FID, FID floor, KID, IS, precision/recall, class coverage (and conditional accuracy,
    Parzen window for the MLP GAN) of `generator` against the test split.

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
    if classifier is None and isinstance(net, ClassifierFeatureNet):
        classifier = net.classifier
    labelled = bool((train[1] >= 0).all()) and classifier is not None

    # Real references, once: the test split, and a train subset of at most num_samples.
    train_idx = _subset(len(train[0]), n, seed + 1)
    real = extract_features(net, test[0], config.batch_size, device)
    floor_ref = extract_features(net, train[0][train_idx], config.batch_size, device)
    t_real = time.perf_counter() - start

    # Generated samples: labels for a conditional G drawn from the data's class distribution.
    labels = None
    if spec.conditional:
        weights = torch.bincount(train[1][train[1] >= 0], minlength=spec.num_classes).double()
        labels = sample_labels(
            n, weights + (weights.sum() == 0), torch.Generator().manual_seed(seed)
        )
    keep_all = spec.arch == "mlp" and val is not None
    # With Inception features the domain classifier still judges the classes, in the same pass.
    judge = (
        classifier.to(device) if labelled and not isinstance(net, ClassifierFeatureNet) else None
    )
    parts, kept, judged, first, to_check = [], [], [], None, []
    checked = 0
    for images, _ in iter_generated(generator, spec, n, config.batch_size, seed, device, labels):
        if first is None:
            first = images[:GRID_SAMPLES].clone()
        if keep_all:
            kept.append(images)
        if checked < config.copy_samples:  # the first ones: z is random, so any are a sample
            to_check.append(images[: config.copy_samples - checked])
            checked += len(to_check[-1])
        parts.append(extract_features(net, images, config.batch_size, device))
        if judge is not None:
            judged.append(predict_logits(judge, images, config.batch_size, device).argmax(1))
    fake = FeatureSet.cat(parts)
    t_gen = time.perf_counter() - start - t_real

    m: dict[str, Any] = {
        "backend": net.name,
        "feature_dim": net.feature_dim,
        "num_samples": n,
        "real_samples": len(real),
        "floor_train_samples": len(floor_ref),
        "seed": seed,
    }
    m["fid"] = frechet_distance(real.features, fake.features)
    m["fid_floor"] = frechet_distance(floor_ref.features, real.features)
    m["fid_over_floor"] = m["fid"] / m["fid_floor"] if m["fid_floor"] > 0 else None
    m["kid_mean"], m["kid_std"], m["kid_subset_size"] = kernel_inception_distance(
        real.features, fake.features, config.kid_subsets, config.kid_subset_size, seed
    )
    m["kid_subsets"] = config.kid_subsets
    m["is_mean"], m["is_std"] = inception_score(fake.logits, config.is_splits, seed)
    m["is_splits"] = min(config.is_splits, n)
    # Real data on the generator's protocol: n samples in the same splits (the split size sets
    # the marginal p(y) each KL is taken against). Train images, drawn with replacement when
    # there are fewer than n: the test split alone (360 digits) would give splits of 36.
    real_idx = (
        torch.randint(len(floor_ref), (n,), generator=torch.Generator().manual_seed(seed + 4))
        if len(floor_ref) < n
        else torch.arange(n)
    )
    m["is_real_mean"], _ = inception_score(floor_ref.logits[real_idx], config.is_splits, seed)
    m["is_real_samples"], m["is_real_source"] = n, "train"
    pr_n = min(len(real), n)
    pr_idx = _subset(n, pr_n, seed + 2)
    m["precision"], m["recall"] = precision_recall(
        real.features[_subset(len(real), pr_n, seed + 3)], fake.features[pr_idx], config.pr_k
    )
    m["pr_samples"], m["pr_k"] = pr_n, config.pr_k
    # The same protocol with training images in the generator's place: what real data score
    # (with a few hundred samples per side, recall of real data itself is well below 1).
    real_pr_n = min(pr_n, len(floor_ref))
    m["precision_real"], m["recall_real"] = precision_recall(
        real.features[_subset(len(real), real_pr_n, seed + 3)],
        floor_ref.features[_subset(len(floor_ref), real_pr_n, seed + 5)],
        config.pr_k,
    )

    rows: list[dict[str, Any]] = []
    if labelled and classifier is not None:
        pred = torch.cat(judged) if judge is not None else fake.logits.argmax(1)
        cov = class_coverage(pred, test[1], classifier.num_classes, config.coverage_min_share)
        m["class_kl"], m["classes_covered"] = cov["class_kl"], cov["classes_covered"]
        m["num_classes"], m["class_entropy"] = cov["num_classes"], cov["class_entropy"]
        names = class_names or [str(k) for k in range(classifier.num_classes)]
        rows = [
            {"class": names[k], "generated": g, "real": r}
            for k, (g, r) in enumerate(zip(cov["generated"], cov["real"], strict=True))
        ]
        if spec.conditional and labels is not None:
            m["conditional_accuracy"] = conditional_accuracy(pred, labels)
        # Against the training labels: the class distribution the generator was fitted to.
        ratios = class_share_ratios(pred, train[1], classifier.num_classes)
        valid = ~torch.isnan(ratios)
        lo, hi = (
            int(torch.where(valid, ratios, torch.inf).argmin()),
            int(torch.where(valid, ratios, -torch.inf).argmax()),
        )
        m["class_share_min"], m["class_share_max"] = ratios[lo].item(), ratios[hi].item()
        m["class_share_min_class"], m["class_share_max_class"] = names[lo], names[hi]
        m["class_share_ratios"] = [None if math.isnan(r) else round(r, 4) for r in ratios.tolist()]
    m.update(copy_fraction(torch.cat(to_check), train[0], test[0]))
    if keep_all and val is not None:
        m.update(parzen_score(torch.cat(kept), val[0], test[0]))
        m["parzen_samples"] = n
    m["eval_seconds"] = time.perf_counter() - start
    m["real_feature_seconds"], m["generate_feature_seconds"] = t_real, t_gen
    log.info("evaluation took %.1f s", m["eval_seconds"])
    return EvalResult(metrics=m, samples=first, class_rows=rows)


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
