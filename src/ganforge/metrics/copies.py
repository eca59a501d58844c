"""Does the generator copy its training images? A nearest-neighbour check in pixel space.

A generated sample counts as a copy when its nearest training image (pixel L2) is closer than
the `percentile`-th percentile of the distances from held-out test images to their nearest
training image: closer to the training set than real unseen data almost ever is. A generator
that draws fresh samples from the data distribution scores about `percentile` %; one that
replays its training set scores 100 %.
"""

from __future__ import annotations

import torch


def nearest_distances(
    queries: torch.Tensor, reference: torch.Tensor, chunk: int = 512
) -> torch.Tensor:
    """Pixel-L2 distance from each of `queries` [N, ...] to its nearest `reference` [M, ...]."""
    ref = reference.flatten(1).double()
    ref_sq = (ref * ref).sum(1)
    out = []
    for i in range(0, len(queries), chunk):
        q = queries[i : i + chunk].flatten(1).double()
        # ‖q − r‖² = ‖q‖² − 2 q·r + ‖r‖²: one matrix product per chunk, exact in float64
        d2 = (q * q).sum(1, keepdim=True) - 2.0 * q @ ref.T + ref_sq
        out.append(d2.clamp_min_(0).min(dim=1).values.sqrt())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def copy_fraction(
    generated: torch.Tensor,
    train: torch.Tensor,
    test: torch.Tensor,
    percentile: float = 5.0,
) -> dict[str, float]:
    """Fraction of `generated` images closer to a training image than `percentile` % of test
    images are; with the threshold (pixel L2 on uint8 values) and the sample counts."""
    if len(generated) == 0 or len(train) == 0 or len(test) == 0:
        raise ValueError("the copy check needs generated, train and test images")
    test_nn = nearest_distances(test, train)
    threshold = torch.quantile(test_nn, percentile / 100.0).item()
    gen_nn = nearest_distances(generated, train)
    return {
        "copy_fraction": (gen_nn < threshold).double().mean().item(),
        "copy_threshold": threshold,
        "copy_percentile": percentile,
        "copy_samples": len(generated),
    }
