"""Deterministic, stratified train/val/test assignment."""

from __future__ import annotations

import numpy as np


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to `counts` (largest remainder, ties by class)."""
    if total == 0 or counts.sum() == 0:
        return np.zeros_like(counts)
    exact = counts * (total / counts.sum())
    alloc = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - alloc), kind="stable")
    for cls in order[: total - int(alloc.sum())]:
        alloc[cls] += 1
    return np.minimum(alloc, counts)


def stratified_split(
    labels: np.ndarray,
    fractions: dict[str, float],
    seed: int,
    rest: str = "train",
) -> dict[str, np.ndarray]:
    """Assign positions 0..len(labels)-1 to splits, stratified by label, seeded.

    `fractions` maps split name -> fraction of the whole (e.g. {"test": 0.2, "val": 0.1});
    what is left goes to `rest`. Each split gets round-up(fraction * N) items overall, spread
    over classes in proportion to their sizes (as sklearn's `train_test_split(stratify=...)`),
    so tiny classes never make it fail. Unlabelled data (all -1) is one class. Every split's
    positions come back in a seeded random order.
    """
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes)).astype(np.int64)
    members = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(classes))]
    taken = np.zeros(len(classes), dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for name, fraction in fractions.items():
        want = min(int(np.ceil(fraction * n)) if fraction > 0 else 0, n - int(taken.sum()))
        alloc = _allocate(counts - taken, want)
        parts = [members[c][taken[c] : taken[c] + alloc[c]] for c in range(len(classes))]
        taken += alloc
        out[name] = rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    parts = [members[c][taken[c] :] for c in range(len(classes))]
    out[rest] = rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    return {k: v.astype(np.int64) for k, v in out.items()}
