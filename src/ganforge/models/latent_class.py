"""A class-conditional generator whose class is drawn from its own latent: z in, image out.

Training with the data's labels (a conditional D) gives far cleaner samples than a label-free
GAN on a small labelled set such as digits, but a conditional G asks its caller for a label.
This wrapper keeps the unconditional interface: the class is a deterministic function of
z's first coordinate, k = F⁻¹(Φ(z₀)) for the class prior's cumulative distribution F, so a
z ~ N(0, I) yields classes in the data's proportions, and the ONNX file takes z alone.
Training draws z₀ inside the interval of the batch's real labels (`z_for_classes`), which
for labels drawn at the prior's rates is the same N(0, 1) z₀ (the inverse-CDF construction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

# Kept off the interval ends so that float32 rounding in erf/erfinv cannot move a z₀ drawn for
# one class across the boundary into its neighbour (their errors are ~1e-7; classes' widths in
# probability are >= ~1e-3 for any prior worth training on).
_EDGE = 1e-4


def class_prior(labels: torch.Tensor, num_classes: int) -> tuple[float, ...]:
    """Each class's share of `labels` [N] (ints in [0, num_classes)) as a tuple of floats."""
    counts = torch.bincount(labels[labels >= 0].long(), minlength=num_classes).double()
    if counts.sum() == 0:
        raise ValueError("no labelled samples: the class prior is undefined")
    return tuple(float(c) for c in counts / counts.sum())


def _bounds(prior: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """[K + 1] cumulative bounds 0 = c₀ < c₁ < ... < c_K = 1 of the prior."""
    p = torch.as_tensor(prior, dtype=torch.float64)
    cum = torch.cat([p.new_zeros(1), torch.cumsum(p, 0)])
    cum[-1] = 1.0
    return cum


def classes_from_z(z0: torch.Tensor, inner_bounds: torch.Tensor) -> torch.Tensor:
    """The class of each z₀ [B]: how many inner bounds (c₁..c_{K-1}) Φ(z₀) exceeds -> int64 [B].

    Written with comparisons and a sum (no searchsorted) so that it exports to ONNX as Erf,
    Greater and ReduceSum.
    """
    u = 0.5 * (1.0 + torch.erf(z0 / math.sqrt(2.0)))
    return (u[:, None] > inner_bounds[None, :].to(u.dtype)).sum(dim=1)


def z_for_classes(
    labels: torch.Tensor, prior: Sequence[float] | torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """z₀ [B] with `classes_from_z(z₀) == labels`: Φ⁻¹ of a point of each label's interval.

    `u` [B] are uniforms in [0, 1); for labels drawn at the prior's rates the z₀ are N(0, 1).
    A float64 tensor `prior` on the labels' device costs no host-to-device copy per call.
    """
    cum = _bounds(prior).to(labels.device)
    lo, hi = cum[labels], cum[labels + 1]
    width = hi - lo
    p = lo + width * (_EDGE + (1.0 - 2.0 * _EDGE) * u.double())
    return (math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)).to(u.dtype)


class LatentClassGenerator(nn.Module):
    """z [B, nz] -> samples: a conditional generator fed the class `classes_from_z(z[:, 0])`."""

    inner_bounds: torch.Tensor  # a buffer (registered in __init__)

    def __init__(self, conditional: nn.Module, prior: Sequence[float]) -> None:
        super().__init__()
        if len(prior) < 2:
            raise ValueError(f"a latent class needs at least 2 classes, got {len(prior)}")
        self.conditional = conditional
        # Only the K - 1 inner bounds decide a class; a buffer so it travels with the weights.
        self.register_buffer("inner_bounds", _bounds(prior)[1:-1].float(), persistent=False)

    def classes(self, z: torch.Tensor) -> torch.Tensor:
        """The class each latent row draws -> int64 [B]."""
        return classes_from_z(z[:, 0].float(), self.inner_bounds)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            raise ValueError(
                "this generator draws its class from z (train.latent_class): pass z only"
            )
        return self.conditional(z, self.classes(z))
