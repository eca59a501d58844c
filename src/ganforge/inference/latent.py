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
