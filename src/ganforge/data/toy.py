"""Toy distributions with known answers: a 1-D Gaussian, the 2-D ring of 8 Gaussians and the
2-D grid of 25 Gaussians (the mode-collapse benchmarks of Metz et al. 2016, Srivastava et al.
2017 and Lin et al. 2018)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.02
GRID_SIDE = 5  # 5 x 5 modes on {-4, -2, 0, 2, 4}^2
GRID_SPACING = 2.0
GRID_STD = 0.02


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


def grid_modes(side: int = GRID_SIDE, spacing: float = GRID_SPACING) -> np.ndarray:
    """Centres of a `side` x `side` grid of Gaussians centred on the origin: float64 [side², 2].

    The default is the grid {-4, -2, 0, 2, 4}² of the mode-collapse papers, row by row.
    """
    axis = spacing * (np.arange(side) - (side - 1) / 2.0)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


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
    return _mixture(ring_modes(), num_points, seed, std, {"radius": RING_RADIUS})


def grid_2d(num_points: int, seed: int, std: float = GRID_STD) -> ToyData:
    """The other mode-collapse benchmark: 25 Gaussians (sigma 0.02) on the grid {-4,...,4}².

    The label of a point is the mode it was drawn from (uniform mixture weights).
    """
    return _mixture(grid_modes(), num_points, seed, std, {"spacing": GRID_SPACING})


def _mixture(
    centres: np.ndarray, num_points: int, seed: int, std: float, info: dict[str, Any]
) -> ToyData:
    """An equal-weight mixture of isotropic Gaussians of `std` at `centres`, labelled by mode."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), size=num_points).astype(np.int64)
    points = (centres[labels] + rng.normal(0.0, std, size=(num_points, 2))).astype(np.float32)
    return ToyData(
        points=points,
        labels=labels,
        classes=[f"mode{k}" for k in range(len(centres))],
        info={"modes": centres.tolist(), "mode_std": std, **info},
    )
