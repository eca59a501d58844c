"""What `Generator.class_arithmetic` returns (rows a, b, c and a − b + c) and where it draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganforge.inference.grid import arithmetic_grid

# `class_arithmetic` draws class k's samples from latent k·MAX_PER_CLASS of the seed's stream
# on: a row then depends on its own class only (changing c leaves row a as it was), a − a + c
# is c, and more samples per class extend a row. At most one readable grid row per class; the
# browser page draws from the same places.
MAX_PER_CLASS = 16


@dataclass(frozen=True)
class ClassArithmetic:
    """The grid of `Generator.class_arithmetic`: rows a, b, c and a − b + c.

    `images` uint8 [4, k + 1, H, W, C]: per row, k samples and then the image of their mean
    latent; the last row holds a_j − b_j + c_j per column and, last, mean(a) − mean(b) +
    mean(c), the result. `latents` float32 [4, k + 1, nz] are what was decoded, before a
    latent-class model's z₀ is placed in its row's class; `labels` are the rows' classes
    (a, b, c, c). `seed` is the seed drawn from (chosen at random when none was given).
    """

    classes: tuple[int, int, int]
    labels: tuple[int, int, int, int]
    seed: int
    latents: np.ndarray
    images: np.ndarray

    @property
    def result(self) -> np.ndarray:
        """decode(mean(a) − mean(b) + mean(c)) as class c: uint8 [H, W, C]."""
        return self.images[-1, -1]

    def grid(self, padding: int = 2) -> np.ndarray:
        """The images as one uint8 grid [H', W', C] (`ganforge.inference.arithmetic_grid`)."""
        return arithmetic_grid(self.images, padding=padding)
