"""Inception Score (Salimans et al. 2016) of class logits, via torchmetrics."""

from __future__ import annotations

import warnings

import torch
from torchmetrics.image.inception import InceptionScore

from ganforge.metrics.features import Precomputed


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) ‖ p(y))), mean and std over `splits` equal parts: `(mean, std)`.

    `logits` [N, K] are turned into p(y|x) by a softmax. The samples are shuffled before the
    split with a torch RNG seeded with `seed`. Perfectly confident predictions spread evenly
    over K classes score K; one class for everything scores 1.
    """
    splits = max(1, min(splits, len(logits)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = InceptionScore(feature=Precomputed(logits.shape[1]), splits=splits)
    metric.update(logits.double())
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*degrees of freedom.*")  # splits == 1
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std) if splits > 1 else 0.0
