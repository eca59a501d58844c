"""Measures with known answers on the toy data sets.

- 2-D ring of 8 Gaussians (Metz et al. 2016; Srivastava et al. 2017): a sample is high quality
  within 3σ of a mode centre; a mode is covered when it receives high-quality samples.
- 1-D Gaussian (Goodfellow et al. 2014): JSD(p_data ‖ p_g), 0 at the optimum, and the value
  V(D, G) = E_data log D(x) + E_z log(1 − D(G(z))), which is −log 4 at the optimum.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG4 = math.log(4.0)


def ring_coverage(
    points: torch.Tensor,
    centres: torch.Tensor | np.ndarray | list,
    std: float,
    num_std: float = 3.0,
    min_samples: int = 1,
) -> dict[str, object]:
    """Modes covered and the fraction of high-quality samples of 2-D points [N, 2].

    A sample is high quality when it lies within `num_std`·σ of its nearest centre; a mode is
    covered when at least `min_samples` high-quality samples fall to it.
    """
    centres = torch.as_tensor(np.asarray(centres), dtype=torch.float64)
    pts = points.double().reshape(len(points), -1)
    dist = torch.cdist(pts, centres)
    nearest_d, nearest = dist.min(dim=1)
    good = nearest_d <= num_std * std
    per_mode = torch.bincount(nearest[good], minlength=len(centres))
    return {
        "modes_covered": int((per_mode >= min_samples).sum()),
        "num_modes": len(centres),
        "high_quality_fraction": good.double().mean().item(),
        "samples_per_mode": per_mode.tolist(),
    }


def _grid(real: np.ndarray, fake: np.ndarray, size: int, pad_std: float = 4.0) -> np.ndarray:
    both = np.concatenate([real, fake])
    spread = float(np.std(real)) or 1.0
    lo = min(np.min(both), np.mean(real) - pad_std * spread) - pad_std * spread
    hi = max(np.max(both), np.mean(real) + pad_std * spread) + pad_std * spread
    return np.linspace(lo, hi, size)


def jensen_shannon_1d(
    fake: torch.Tensor,
    real: torch.Tensor | None = None,
    mean: float | None = None,
    std: float | None = None,
    grid_size: int = 4001,
) -> float:
    """JSD(p_data ‖ p_g) in nats (0 … log 2) for 1-D samples, integrated on a grid.

    p_g is a Gaussian KDE (Scott's bandwidth) of the generated samples; p_data is the exact
    N(mean, std²) when `mean` and `std` are given, else a KDE of the `real` samples.
    """
    from scipy.stats import gaussian_kde, norm

    x_fake = fake.double().flatten().numpy()
    if mean is not None and std is not None:
        ref = np.array([mean - std, mean + std])
        grid = _grid(ref, x_fake, grid_size)
        p = norm.pdf(grid, loc=mean, scale=std)
    elif real is not None:
        x_real = real.double().flatten().numpy()
        grid = _grid(x_real, x_fake, grid_size)
        p = gaussian_kde(x_real)(grid)
    else:
        raise ValueError("pass the real samples, or the data's mean and std")
    if np.ptp(x_fake) == 0:  # a collapsed generator: a point mass, the KDE is undefined
        x_fake = x_fake + np.random.default_rng(0).normal(0, 1e-6, size=x_fake.shape)
    q = gaussian_kde(x_fake)(grid)
    p, q = p / np.trapezoid(p, grid), q / np.trapezoid(q, grid)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        integrand = np.zeros_like(a)
        integrand[mask] = a[mask] * (np.log(a[mask]) - np.log(m[mask]))
        return float(np.trapezoid(integrand, grid))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


@torch.inference_mode()
def value_function(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    real_labels: torch.Tensor | None = None,
    fake_labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """V(D, G) = E log D(x) + E log(1 − D(G(z))) with D on logits; −log 4 at the optimum.

    Also the mean D(x) and D(G(z)) (both 1/2 at the optimum).
    """
    discriminator.eval()
    lr = discriminator(real, real_labels).double().flatten()
    lf = discriminator(fake, fake_labels).double().flatten()
    v = F.logsigmoid(lr).mean() + F.logsigmoid(-lf).mean()
    return {
        "value": v.item(),
        "value_optimum": -LOG4,
        "value_gap": v.item() + LOG4,
        "d_real": torch.sigmoid(lr).mean().item(),
        "d_fake": torch.sigmoid(lf).mean().item(),
    }
