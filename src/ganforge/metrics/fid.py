"""Fréchet distance (FID; Heusel et al. 2017) between two sets of features, via torchmetrics."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from ganforge.metrics.features import Precomputed


def min_fid_samples(feature_dim: int) -> int:
    """The fewest samples whose covariance can be full rank in `feature_dim` dimensions.

    With fewer, the fitted Gaussian is degenerate and the FID comes out deceptively low.
    """
    return feature_dim + 1


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between feature sets [N, F] and [M, F]: torchmetrics' estimate, in float64.

    ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^½) of Gaussians fitted to each set.
    """
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature widths differ: {real.shape[1]} vs {fake.shape[1]}")
    metric = FrechetInceptionDistance(feature=Precomputed(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def frechet_distance_gaussians(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Closed-form Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) (scipy's sqrtm).

    The reference the torchmetrics path is tested against.
    """
    from scipy import linalg

    covmean = linalg.sqrtm(np.asarray(sigma1) @ np.asarray(sigma2))
    covmean = np.real(covmean)
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
