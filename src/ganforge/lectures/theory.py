"""The lectures' formulas on densities and logits: D*, C(G) = −log 4 + 2·JSD, saturation.

Goodfellow et al. 2014: for a fixed G the best discriminator is

    D*(x) = p_data(x) / (p_data(x) + p_g(x))                      (Proposition 1)

and against it the game is worth

    C(G) = V(D*, G) = −log 4 + 2·JSD(p_data ‖ p_g)                 (Theorem 1)

which is −log 4 exactly when p_g = p_data, where D* = ½ everywhere. The toy data sets know
p_data in closed form (`ToyDistribution`, from what `prepare` wrote into meta.json); p_g is
estimated from G's samples. Section 3 of the paper: G's minimax loss log(1 − D(G(z))) saturates
when D rejects the fakes; `generator_logit_gradients` measures by how much, per sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from ganforge.losses import LOG4, Objective, generator_loss

OBJECTIVES: tuple[Objective, ...] = (
    "minimax",
    "non_saturating",
)  # the two G losses of the paper's section 3


@dataclass(frozen=True)
class ToyDistribution:
    """p_data of a toy data set: an equal-weight mixture of isotropic Gaussians of `std` at
    `centres` [M, D] (one centre: the 1-D Gaussian N(mean, std²))."""

    centres: np.ndarray
    std: float
    name: str = ""

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ToyDistribution | None:
        """The distribution `prepare` recorded in meta.json; None for data without one (images)."""
        if meta.get("dataset") == "gaussian_1d" and "mean" in meta and "std" in meta:
            return cls(np.array([[float(meta["mean"])]]), float(meta["std"]), "gaussian_1d")
        if meta.get("modes") and meta.get("mode_std"):
            centres = np.asarray(meta["modes"], dtype=np.float64).reshape(len(meta["modes"]), -1)
            return cls(centres, float(meta["mode_std"]), str(meta.get("dataset", "")))
        return None

    @property
    def dim(self) -> int:
        return int(self.centres.shape[1])

    @property
    def num_modes(self) -> int:
        return int(self.centres.shape[0])

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log p_data at points `x` [N, D]."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), self.dim)
        var = self.std**2
        sq = ((x[:, None, :] - self.centres[None, :, :]) ** 2).sum(axis=2)
        log_k = -0.5 * sq / var - 0.5 * self.dim * math.log(2 * math.pi * var)
        return logsumexp(log_k, axis=1) - math.log(self.num_modes)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """p_data at points `x` [N, D]."""
        return np.exp(self.log_pdf(x))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n float32 points [n, D] drawn from p_data with `rng`."""
        modes = rng.integers(0, self.num_modes, size=n)
        noise = rng.normal(0.0, self.std, size=(n, self.dim))
        return (self.centres[modes] + noise).astype(np.float32)


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """D*(x) = p_data / (p_data + p_g) of two densities on the same points (Proposition 1).

    NaN where both vanish: off the union of the supports D* is not defined (a plot leaves a gap).
    """
    p, q = np.asarray(p_data, dtype=np.float64), np.asarray(p_g, dtype=np.float64)
    total = p + q
    out = np.full_like(total, np.nan)
    np.divide(p, total, out=out, where=total > 0)
    return out


def game_value_at_optimum(jsd: float) -> float:
    """C(G) = V(D*, G) = −log 4 + 2·JSD(p_data ‖ p_g) (Theorem 1), the value with D at its best."""
    return -LOG4 + 2.0 * jsd


def jensen_shannon_grid(p: np.ndarray, q: np.ndarray, cell: float) -> float:
    """JSD(p ‖ q) in nats (0 … log 2) of two densities tabulated on one regular grid.

    `cell` is the grid's cell length (area in 2-D); each density is renormalised to integrate
    to 1 on the grid, so the tails the grid leaves out do not bias the result.
    """
    p = _normalised(p, cell)
    q = _normalised(q, cell)
    m = 0.5 * (p + q)
    return max(0.0, 0.5 * _kl(p, m, cell) + 0.5 * _kl(q, m, cell))


def value_on_grid(d: np.ndarray, p: np.ndarray, q: np.ndarray, cell: float) -> float:
    """V(D, G) = ∫ p_data log D + p_g log(1 − D) for D, p_data, p_g tabulated on one grid.

    Where a density is 0 its term contributes nothing (0 · log 0 = 0).
    """
    p, q = _normalised(p, cell), _normalised(q, cell)
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        real = np.where(p > 0, p * np.log(d), 0.0)
        fake = np.where(q > 0, q * np.log1p(-d), 0.0)
    return float((real + fake).sum() * cell)


def jensen_shannon_discrete(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(p ‖ q) in nats (0 … log 2) of two probability vectors over the same outcomes."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * (np.log(a[mask]) - np.log(m[mask]))))

    return min(max(0.0, 0.5 * kl(p) + 0.5 * kl(q)), math.log(2.0))


def binned_jsd(fake: np.ndarray, dist: ToyDistribution, cell: float | None = None) -> float:
    """JSD between p_data and p_g coarse-grained to square cells of side `cell` (default 6σ of
    the modes, the diameter of a high-quality region), for G's samples `fake` [N, D].

    p_data's mass in each cell is exact (normal CDFs, per axis); p_g's is the share of `fake`
    in it; everything outside the cells around the modes is one more cell. Coarse-graining can
    only lower a divergence (data processing), so this is a lower bound of JSD(p_data ‖ p_g),
    up to the noise of G's histogram: with p_g = p_data the estimate is about (cells that hold
    p_data's mass) / (8N), its chi-squared bias. (A KDE of p_g would need a bandwidth near σ
    to see the modes, far below the spacing of a few hundred samples smeared between them: it
    would misjudge exactly the generators worth watching.)
    """
    from scipy.stats import norm

    h = float(cell if cell is not None else 6.0 * dist.std)
    pts = np.asarray(fake, dtype=np.float64).reshape(len(fake), dist.dim)
    lo = dist.centres.min(axis=0) - 4.0 * dist.std - h
    counts = np.ceil((dist.centres.max(axis=0) + 4.0 * dist.std + h - lo) / h).astype(int)
    edges = [lo[a] + h * np.arange(counts[a] + 1) for a in range(dist.dim)]
    # p_data per cell: a product of per-axis masses, summed over the equal-weight components
    p_cells = np.zeros(tuple(counts))
    for centre in dist.centres:
        masses = [
            np.diff(norm.cdf(edges[a], loc=centre[a], scale=dist.std)) for a in range(dist.dim)
        ]
        p_cells += _outer(masses) / dist.num_modes
    q_cells, _ = np.histogramdd(pts, bins=edges)
    p = np.append(p_cells.ravel(), max(0.0, 1.0 - p_cells.sum()))
    q = np.append(q_cells.ravel(), len(pts) - q_cells.sum())
    return jensen_shannon_discrete(p, q)


def _outer(vectors: Sequence[np.ndarray]) -> np.ndarray:
    out = vectors[0]
    for v in vectors[1:]:
        out = np.multiply.outer(out, v)
    return out


def generator_logit_gradients(
    fake_logits: torch.Tensor, objectives: Sequence[Objective] = OBJECTIVES
) -> dict[str, torch.Tensor]:
    """|∂ℓ_G/∂l| per sample of D's logits l on G's samples, for each G objective.

    Autograd through `ganforge.losses.generator_loss` (a batch mean, so its gradient is scaled
    back by the batch size to each sample's own term). Closed forms: minimax σ(l) = D(G(z)),
    which vanishes as D rejects the fakes (saturation); non-saturating 1 − σ(l), which tends to 1.
    """
    out: dict[str, torch.Tensor] = {}
    for kind in objectives:
        logits = fake_logits.detach().double().flatten().requires_grad_(True)
        (grad,) = torch.autograd.grad(generator_loss(logits, kind) * logits.numel(), logits)
        out[kind] = grad.abs()
    return out


def _normalised(density: np.ndarray, cell: float) -> np.ndarray:
    d = np.clip(np.asarray(density, dtype=np.float64), 0.0, None)
    total = d.sum() * cell
    if not total > 0:
        raise ValueError("a density that is 0 everywhere on the grid cannot be normalised")
    return d / total


def _kl(a: np.ndarray, m: np.ndarray, cell: float) -> float:
    mask = a > 0
    return float((a[mask] * (np.log(a[mask]) - np.log(m[mask]))).sum() * cell)
