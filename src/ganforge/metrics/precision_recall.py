"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN manifolds in feature space.

Each set's manifold is the union of balls around its points, of radius the distance to the
k-th nearest neighbour within the set. Precision: the fraction of generated samples inside the
real manifold (fidelity). Recall: the fraction of real samples inside the generated manifold
(diversity). Exact pairwise distances, computed in row blocks so that memory stays bounded.
"""

from __future__ import annotations

import torch


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double())


def knn_radii(features: torch.Tensor, k: int = 3, block: int = 1024) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    if len(features) <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {len(features)}")
    out = []
    for i in range(0, len(features), block):
        d = _pairwise(features[i : i + block], features)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def _inside(
    query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, block: int
) -> torch.Tensor:
    hits = []
    for i in range(0, len(query), block):
        d = _pairwise(query[i : i + block], ref)
        hits.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(hits)


def inside_manifold(
    query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, block: int = 1024
) -> torch.Tensor:
    """Which of `query` [N, F] lie in the k-NN manifold of `ref` (`radii` from `knn_radii`)."""
    return _inside(query, ref, radii, block)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, block: int = 1024
) -> tuple[float, float]:
    """`(precision, recall)` of generated features `fake` against real features `real`.

    Use sets of equal size: recall in particular depends on the number of generated samples.
    """
    precision = _inside(fake, real, knn_radii(real, k, block), block).double().mean().item()
    recall = _inside(real, fake, knn_radii(fake, k, block), block).double().mean().item()
    return precision, recall
