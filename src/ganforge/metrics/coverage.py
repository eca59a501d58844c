"""Class coverage of generated samples, judged by the domain classifier."""

from __future__ import annotations

import math
from typing import Any

import torch


def class_histogram(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts per class [num_classes] (labels outside [0, num_classes) are ignored)."""
    valid = labels[(labels >= 0) & (labels < num_classes)]
    return torch.bincount(valid.long(), minlength=num_classes)


def class_coverage(
    predicted: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
    min_share: float = 0.1,
) -> dict[str, Any]:
    """How the classifier's predictions on generated samples spread over the classes.

    - `class_kl`: KL(p_gen ‖ p_data) in nats between the predicted-class histogram and the
      data's class distribution (0 when they match; log K when all samples fall in one of K
      even classes). Finite whenever every class appears in the data.
    - `classes_covered`: classes that receive at least `min_share` of their expected share
      (a handful of stray predictions do not make a class covered).
    - `generated` / `real`: the two histograms (counts), for the class-histogram plot.
    """
    gen = class_histogram(predicted, num_classes).double()
    real = class_histogram(real_labels, num_classes).double()
    if gen.sum() == 0 or real.sum() == 0:
        raise ValueError("class coverage needs generated predictions and labelled real data")
    p_gen, p_real = gen / gen.sum(), real / real.sum()
    mask = p_gen > 0
    kl = (p_gen[mask] * (p_gen[mask].log() - p_real[mask].clamp_min(1e-12).log())).sum()
    covered = (p_gen >= min_share * p_real) & (p_real > 0)
    return {
        "class_kl": float(kl),
        "classes_covered": int(covered.sum()),
        "num_classes": num_classes,
        "class_entropy": float(-(p_gen[mask] * p_gen[mask].log()).sum()),
        "max_class_entropy": math.log(num_classes),
        "generated": gen.long().tolist(),
        "real": real.long().tolist(),
    }


def conditional_accuracy(predicted: torch.Tensor, requested: torch.Tensor) -> float:
    """Fraction of a conditional generator's samples classified as the label they were asked for."""
    return (predicted.cpu() == requested.cpu()).double().mean().item()


def class_share_ratios(
    predicted: torch.Tensor, data_labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Per class: (share among generated samples) / (share in the data) [num_classes], float64.

    1 everywhere for a generator that draws classes as the data does; classes absent from the
    data get NaN (no expected share to compare with).
    """
    gen = class_histogram(predicted, num_classes).double()
    real = class_histogram(data_labels, num_classes).double()
    if gen.sum() == 0 or real.sum() == 0:
        raise ValueError("class shares need generated predictions and labelled real data")
    p_gen, p_real = gen / gen.sum(), real / real.sum()
    return torch.where(p_real > 0, p_gen / p_real.clamp_min(1e-300), torch.nan)
