"""Walks and arithmetic in latent space (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Method = Literal["linear", "slerp"]


def lerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Straight line from z0 to z1 at fractions t: [T, nz]."""
    t = np.asarray(t, dtype=np.float64)[:, None]
    return ((1.0 - t) * z0[None] + t * z1[None]).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (White 2016, "Sampling generative networks"): [T, nz].

    A Gaussian latent lives near a sphere of radius sqrt(nz); the great-circle path keeps
    the norm there where the straight line cuts through the low-density middle. Falls back
    to the straight line when z0 and z1 are (anti)parallel.
    """
    a, b = z0.astype(np.float64), z1.astype(np.float64)
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(z0, z1, t)
    t = np.asarray(t, dtype=np.float64)[:, None]
    out = (np.sin((1.0 - t) * omega) * a[None] + np.sin(t * omega) * b[None]) / np.sin(omega)
    return out.astype(np.float32)


def interpolate_latents(
    z0: np.ndarray, z1: np.ndarray, steps: int, method: Method = "linear"
) -> np.ndarray:
    """`steps` latents from z0 to z1, both ends included: [steps, nz]."""
    if steps < 2:
        raise ValueError(f"steps = {steps}: an interpolation needs at least 2 steps")
    z0, z1 = np.asarray(z0, np.float32).reshape(-1), np.asarray(z1, np.float32).reshape(-1)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {z0.shape} and z1 {z1.shape} differ in size")
    t = np.linspace(0.0, 1.0, steps)
    if method == "linear":
        return lerp(z0, z1, t)
    if method == "slerp":
        return slerp(z0, z1, t)
    raise ValueError(f"method {method!r}: use linear or slerp")


def _group_mean(group: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(group, dtype=np.float64)
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and len(arr):
        return arr.mean(axis=0)
    raise ValueError(f"a latent group must be [nz] or [k, nz] with k >= 1, got {arr.shape}")


def latent_arithmetic(plus: Sequence[np.ndarray], minus: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Vector arithmetic on latents (Radford et al. 2015, sec. 6.3): Σ mean(plus) − Σ mean(minus).

    Each group is one latent [nz] or several [k, nz] that are averaged first, as the paper
    averages three exemplars per concept: smiling woman − neutral woman + neutral man.
    """
    if not plus:
        raise ValueError("latent arithmetic needs at least one group to add")
    means = [_group_mean(g) for g in plus] + [-_group_mean(g) for g in minus]
    shapes = {m.shape for m in means}
    if len(shapes) != 1:
        raise ValueError(f"latent groups differ in size: {sorted(shapes)}")
    return np.sum(means, axis=0).astype(np.float32)


def arithmetic_table(groups: np.ndarray) -> np.ndarray:
    """The latents of a class-arithmetic grid: groups [3, k, nz] (a, b, c) -> [4, k + 1, nz].

    Rows a, b, c and a − b + c; columns the k samples, then their mean. Column j of the last
    row is a_j − b_j + c_j, one sample per class; its last entry is mean(a) − mean(b) +
    mean(c), the arithmetic that Radford et al. (2015, sec. 6.3) found stable only once three
    exemplars per concept were averaged: the grid shows both. Float64 steps in a fixed order
    (rows summed in turn, then ÷ k; (a + c) − b, as `latent_arithmetic` sums), rounded to
    float32 once: `web/static/app.js` takes the same steps.
    """
    g = np.asarray(groups, np.float32).astype(np.float64)
    if g.ndim != 3 or g.shape[0] != 3 or g.shape[1] < 1:
        raise ValueError(f"class arithmetic wants latents [3, k, nz] with k >= 1, got {g.shape}")
    total = g[:, 0].copy()
    for j in range(1, g.shape[1]):
        total = total + g[:, j]
    rows = np.concatenate([g, (total / g.shape[1])[:, None]], axis=1)
    result = (rows[0] + rows[2]) - rows[1]
    return np.concatenate([rows, result[None]]).astype(np.float32)


# ---- a class on request for a latent-class generator --------------------------------------
#
# A latent-class generator (`train.labels: latent`) draws its class from z's first
# coordinate: k = F⁻¹(Φ(z₀)) for the class prior's cumulative shares F, stored in the ONNX
# metadata (`class_prior`). Asking it for class k moves z₀ into k's interval: u = Φ(z₀) is
# mapped to c_k + (c_{k+1} − c_k)·u, and z₀ = Φ⁻¹ of that. For z₀ ~ N(0, 1) this is z₀ drawn
# from N(0, 1) restricted to the class's interval, the latents the generator saw for class
# k in training (`ganforge.models.latent_class.z_for_classes`). Φ and Φ⁻¹ are written with
# + − × ÷, exp, log and sqrt only, the same steps in `web/static/prng.js` (the browser page).

# As ganforge.models.latent_class._EDGE: z₀ stays off the interval ends, so that float32
# rounding in the graph's Erf cannot move it into the neighbouring class.
CLASS_EDGE = 1e-4
_SQRT_2PI = 2.5066282746310002

# Hart (1968) as given by West (2005), "Better approximations to cumulative normal
# functions": |error| < 1e-14.
_HART_NUM = (
    0.0352624965998911, 0.700383064443688, 6.37396220353165, 33.912866078383,
    112.079291497871, 221.213596169931, 220.206867912376,
)  # fmt: skip
_HART_DEN = (
    0.0883883476483184, 1.75566716318264, 16.064177579207, 86.7807322029461,
    296.564248779674, 637.333633378831, 793.826512519948, 440.413735824752,
)  # fmt: skip
# Acklam's inverse normal CDF (relative error < 1.2e-9 before the Halley step below).
_ACK_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
          -30.66479806614716, 2.506628277459239)  # fmt: skip
_ACK_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
          -13.28068155288572)  # fmt: skip
_ACK_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
          4.374664141464968, 2.938163982698783)  # fmt: skip
_ACK_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
_ACK_LOW = 0.02425


def _horner(coeffs: Sequence[float], x: np.ndarray) -> np.ndarray:
    out = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        out = out * x + c
    return out


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x), float64, to ~1e-14 (Hart's algorithm 5666)."""
    x = np.asarray(x, np.float64)
    a = np.minimum(np.abs(x), 37.0)
    e = np.exp(-a * a / 2.0)
    near = e * _horner(_HART_NUM, a) / _horner(_HART_DEN, a)
    b = np.maximum(a, 1.0)  # the continued fraction is used for a >= 7.07 only
    cf = b + 0.65
    for k in (4.0, 3.0, 2.0, 1.0):
        cf = b + k / cf
    tail = e / cf / _SQRT_2PI
    lower = np.where(a < 7.07106781186547, near, tail)
    return np.where(x > 0, 1.0 - lower, lower)


def normal_ppf(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p) for p in (0, 1), float64: Acklam's approximation and one Halley step."""
    p = np.clip(np.asarray(p, np.float64), 1e-300, 1.0 - 1e-16)
    q = np.minimum(p, 1.0 - p)
    t = np.sqrt(-2.0 * np.log(q))
    tail = _horner(_ACK_C, t) / (_horner(_ACK_D, t) * t + 1.0)
    tail = np.where(p < 0.5, tail, -tail)
    r = (p - 0.5) ** 2
    central = (p - 0.5) * _horner(_ACK_A, r) / (_horner(_ACK_B, r) * r + 1.0)
    x = np.where(q < _ACK_LOW, tail, central)
    err = normal_cdf(x) - p
    u = err * _SQRT_2PI * np.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def class_bounds(prior: Sequence[float]) -> np.ndarray:
    """[K + 1] cumulative shares 0 = c₀ < c₁ < ... < c_K = 1 of a class prior, float64."""
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(prior, np.float64))])
    cum[-1] = 1.0
    return cum


def classes_of(z0: np.ndarray, prior: Sequence[float]) -> np.ndarray:
    """The class a latent-class generator draws for each z₀ [N] -> int64 [N]."""
    inner = class_bounds(prior)[1:-1]
    u = normal_cdf(np.asarray(z0, np.float32).astype(np.float64))
    return (u[:, None] > inner[None, :]).sum(axis=1).astype(np.int64)


def place_in_class(z0: np.ndarray, labels: np.ndarray, prior: Sequence[float]) -> np.ndarray:
    """z₀ [N] moved into the interval of class `labels` [N] of `prior` -> float32 [N].

    The position inside the interval is Φ(z₀): a seed's latent keeps its own variety
    within the class, and a truncated z₀ (nearer 0) lands nearer the interval's middle.
    """
    cum = class_bounds(prior)
    labels = np.asarray(labels, np.int64)
    lo, hi = cum[labels], cum[labels + 1]
    u = normal_cdf(np.asarray(z0, np.float32).astype(np.float64))
    p = lo + (hi - lo) * (CLASS_EDGE + (1.0 - 2.0 * CLASS_EDGE) * u)
    return normal_ppf(p).astype(np.float32)
