"""What every image score reads: the real references' features and one pass over the samples.

`collect_samples` takes the features of the test split and of a train subset once, then
generates n samples batch by batch, taking their features (and, with Inception features, the
domain classifier's verdict) in the same pass; the scores of `evaluate.py` read the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from ganforge.classifier import DomainClassifier, predict_logits
from ganforge.config import EvaluateConfig
from ganforge.metrics.coverage import class_coverage
from ganforge.metrics.features import (
    ClassifierFeatureNet,
    FeatureNet,
    FeatureSet,
    extract_features,
    iter_generated,
    sample_labels,
)
from ganforge.models import GeneratorSpec

GRID_SAMPLES = 64
Split = tuple[torch.Tensor, torch.Tensor]  # (uint8 images [N, C, H, W], labels [N])


def random_subset(n: int, k: int, seed: int) -> torch.Tensor:
    """A deterministic random subset of k of n indices (all of them, in order, when k ≥ n)."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


@dataclass
class ImageSamples:
    """What every image score reads: one pass over the real references and the samples."""

    config: EvaluateConfig
    spec: GeneratorSpec
    seed: int
    train: Split
    test: Split
    val: Split | None
    real: FeatureSet  # the test split: what the samples are compared with
    floor_ref: FeatureSet  # a train subset of at most num_samples: real data in G's place
    fake: FeatureSet  # the generated samples
    labels: torch.Tensor | None  # the classes a conditional G was asked for
    predicted: torch.Tensor | None  # the classes the classifier sees in them (labelled data)
    num_classes: int
    class_names: list[str]
    judges_classes: bool  # the feature net's logits are classes (see FeatureNet)
    first: torch.Tensor  # the first samples (up to GRID_SAMPLES of the first batch)
    to_check: torch.Tensor  # the first copy_samples samples (z is random: any are a sample)
    kept: torch.Tensor | None  # all samples, for the Parzen window of an MLP G
    seconds: dict[str, float]  # real_feature_seconds, generate_feature_seconds

    @property
    def n(self) -> int:
        return self.config.num_samples

    @cached_property
    def coverage(self) -> dict[str, Any] | None:
        """`class_coverage` of the predicted classes against the test labels (labelled data)."""
        if self.predicted is None:
            return None
        return class_coverage(
            self.predicted, self.test[1], self.num_classes, self.config.coverage_min_share
        )


@dataclass
class _Pass:
    """One pass over the generated samples."""

    parts: list[FeatureSet]
    kept: list[torch.Tensor]
    judged: list[torch.Tensor]
    to_check: list[torch.Tensor]
    first: torch.Tensor | None = None


def collect_samples(
    generator: nn.Module,
    spec: GeneratorSpec,
    net: FeatureNet,
    train: Split,
    test: Split,
    config: EvaluateConfig,
    val: Split | None = None,
    classifier: DomainClassifier | None = None,
    class_names: list[str] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> ImageSamples:
    """The real references' features, then one pass over n generated samples."""
    start = time.perf_counter()
    n, batch = config.num_samples, config.batch_size
    # Real references, once: the test split, and a train subset of at most num_samples.
    real = extract_features(net, test[0], batch, device)
    floor_idx = random_subset(len(train[0]), n, seed + 1)
    floor_ref = extract_features(net, train[0][floor_idx], batch, device)
    t_real = time.perf_counter() - start
    labelled = bool((train[1] >= 0).all()) and classifier is not None
    # With Inception features the domain classifier still judges the classes, in the same pass.
    judge = None
    if labelled and classifier is not None and not isinstance(net, ClassifierFeatureNet):
        judge = classifier.to(device)
    labels = _requested_labels(spec, train[1], n, seed)
    keep_all = spec.arch == "mlp" and val is not None
    done = _generate(generator, spec, net, config, seed, device, labels, judge, keep_all)
    if done.first is None:
        raise ValueError(f"evaluate.num_samples = {n}: the generator gave no sample")
    fake = FeatureSet.cat(done.parts)
    predicted = None
    if labelled:
        predicted = torch.cat(done.judged) if judge is not None else fake.logits.argmax(1)
    num_classes = classifier.num_classes if classifier is not None else 0
    return ImageSamples(
        config=config,
        spec=spec,
        seed=seed,
        train=train,
        test=test,
        val=val,
        real=real,
        floor_ref=floor_ref,
        fake=fake,
        labels=labels,
        predicted=predicted,
        num_classes=num_classes,
        class_names=class_names or [str(k) for k in range(num_classes)],
        judges_classes=net.judges_classes,
        first=done.first,
        to_check=torch.cat(done.to_check),
        kept=torch.cat(done.kept) if keep_all else None,
        seconds={
            "real_feature_seconds": t_real,
            "generate_feature_seconds": time.perf_counter() - start - t_real,
        },
    )


def _requested_labels(
    spec: GeneratorSpec, train_labels: torch.Tensor, n: int, seed: int
) -> torch.Tensor | None:
    """Labels for a conditional G, drawn from the data's class distribution (None otherwise)."""
    if not spec.conditional:
        return None
    known = train_labels[train_labels >= 0]
    weights = torch.bincount(known, minlength=spec.num_classes).double()
    return sample_labels(n, weights + (weights.sum() == 0), torch.Generator().manual_seed(seed))


def _generate(
    generator: nn.Module,
    spec: GeneratorSpec,
    net: FeatureNet,
    config: EvaluateConfig,
    seed: int,
    device: torch.device | str,
    labels: torch.Tensor | None,
    judge: DomainClassifier | None,
    keep_all: bool,
) -> _Pass:
    """n samples batch by batch: their features, the judge's classes, the samples kept."""
    done, batch, checked = _Pass([], [], [], []), config.batch_size, 0
    for images, _ in iter_generated(
        generator, spec, config.num_samples, batch, seed, device, labels
    ):
        if done.first is None:
            done.first = images[:GRID_SAMPLES].clone()
        if keep_all:
            done.kept.append(images)
        if checked < config.copy_samples:
            done.to_check.append(images[: config.copy_samples - checked])
            checked += len(done.to_check[-1])
        done.parts.append(extract_features(net, images, batch, device))
        if judge is not None:
            done.judged.append(predict_logits(judge, images, batch, device).argmax(1))
    return done
