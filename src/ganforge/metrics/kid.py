"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased polynomial MMD², via torchmetrics."""

from __future__ import annotations

import warnings

import torch
from torchmetrics.image.kid import KernelInceptionDistance

from ganforge.metrics.features import Precomputed


def kernel_inception_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 50,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float, int]:
    """KID mean and std over `subsets` random subsets: `(mean, std, subset_size_used)`.

    The subset size is capped at the size of the smaller set (torchmetrics refuses larger
    subsets); the size used is returned so that it can be reported beside the score. The
    subsets are drawn from a torch RNG seeded with `seed`, leaving the global RNG untouched.
    """
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(
            feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size
