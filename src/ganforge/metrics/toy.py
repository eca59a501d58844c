"""Measures with known answers on the toy data sets.

- 2-D ring of 8 and grid of 25 Gaussians (Metz et al. 2016; Srivastava et al. 2017; Lin et al.
  2018): a sample is high quality within 3σ of a mode centre; a mode is covered when it holds at
  least a quarter of its expected share of the samples as high-quality samples (one stray
  sample is not coverage).
- 1-D Gaussian (Goodfellow et al. 2014): JSD(p_data ‖ p_g), 0 at the optimum, and the value
  V(D, G) = E_data log D(x) + E_z log(1 − D(G(z))), which is −log 4 at the optimum.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG4 = math.log(4.0)


# A mode counts as covered with at least this fraction of its expected share of the samples
# (1 / modes for an equal-weight mixture) within num_std·σ: a few stray samples near a mode
# that G has otherwise dropped must not count as learning it.
MIN_MODE_SHARE = 0.25
NUM_STD = 3.0


def mode_histogram(
    points: torch.Tensor | np.ndarray,
    centres: torch.Tensor | np.ndarray | list,
    sigma: float,
    num_std: float = NUM_STD,
) -> tuple[torch.Tensor, torch.Tensor]:
    """High-quality samples per mode, and which samples are high quality.

    A sample of `points` [N, D] is high quality when it lies within `num_std`·`sigma` of its
    nearest centre of `centres` [M, D]; it is then counted for that mode. Returns
    (counts int64 [M], high_quality bool [N]).
    """
    centres = torch.as_tensor(np.asarray(centres), dtype=torch.float64)
    pts = torch.as_tensor(points).double().reshape(len(points), -1)
    nearest_d, nearest = torch.cdist(pts, centres).min(dim=1)
    good = nearest_d <= num_std * sigma
    return torch.bincount(nearest[good], minlength=len(centres)), good


def mode_rule(min_share: float = MIN_MODE_SHARE, num_std: float = NUM_STD) -> str:
    """The coverage rule in words, written next to the counts it produced."""
    return (
        f"a sample is high quality within {num_std:g} sigma of a mode centre; a mode is covered "
        f"when it holds >= {min_share:g} x its expected share (1/modes) of all samples as "
        "high-quality samples"
    )


def mode_coverage(
    points: torch.Tensor | np.ndarray,
    centres: torch.Tensor | np.ndarray | list,
    std: float,
    num_std: float = NUM_STD,
    min_share: float = MIN_MODE_SHARE,
) -> dict[str, Any]:
    """Modes covered and the fraction of high-quality samples of 2-D points [N, 2].

    `mode_shares[k]` is mode k's high-quality samples over its expected count N / modes (1.0
    for a perfect equal-weight mixture); a mode is covered when its share is >= `min_share`.
    """
    counts, good = mode_histogram(points, centres, std, num_std)
    n, modes = len(good), len(counts)
    shares = counts.double() * modes / max(n, 1)
    return {
        "modes_covered": int((shares >= min_share).sum()),
        "num_modes": modes,
        "high_quality_fraction": good.double().mean().item() if n else 0.0,
        "samples_per_mode": counts.tolist(),
        "mode_shares": [round(v, 4) for v in shares.tolist()],
        "mode_rule": mode_rule(min_share, num_std),
    }


# The ring was the first toy problem measured; the grid uses the same function.
ring_coverage = mode_coverage


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
