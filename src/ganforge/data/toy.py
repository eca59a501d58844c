"""Toy distributions with known answers: a 1-D Gaussian and the 2-D ring of 8 Gaussians."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.02


@dataclass
class ToyData:
    points: np.ndarray  # float32 [N, D]
    labels: np.ndarray  # int64 [N], -1 when unlabelled
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def ring_modes(modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """Centres of `modes` Gaussians evenly spaced on a circle: float64 [modes, 2]."""
    angles = 2.0 * math.pi * np.arange(modes) / modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def gaussian_1d(num_points: int, mean: float, std: float, seed: int) -> ToyData:
    """N(mean, std^2) samples, shape [N, 1], unlabelled."""
    rng = np.random.default_rng(seed)
    points = rng.normal(mean, std, size=(num_points, 1)).astype(np.float32)
    return ToyData(
        points=points,
        labels=np.full(num_points, -1, dtype=np.int64),
        classes=[],
        info={"mean": float(mean), "std": float(std)},
    )


def ring_2d(num_points: int, seed: int, std: float = RING_STD) -> ToyData:
    """The mode-collapse benchmark: 8 Gaussians (sigma 0.02) on a circle of radius 2.

    The label of a point is the mode it was drawn from (uniform mixture weights).
    """
    rng = np.random.default_rng(seed)
    centres = ring_modes()
    labels = rng.integers(0, RING_MODES, size=num_points).astype(np.int64)
    points = (centres[labels] + rng.normal(0.0, std, size=(num_points, 2))).astype(np.float32)
    return ToyData(
        points=points,
        labels=labels,
        classes=[f"mode{k}" for k in range(RING_MODES)],
        info={"modes": centres.tolist(), "mode_std": std, "radius": RING_RADIUS},
    )
