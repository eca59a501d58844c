"""Labels for a GAN trained without the data's labels: k-means clusters of the training data.

A label-free DCGAN on a small set such as digits spreads its samples between the classes
(high recall, low precision). Conditioning on clusters of the data instead of classes brings
back most of what labels give (Sage et al. 2018 cluster image features to condition a GAN;
Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs", cluster D's features):
D reads each training image's cluster, G draws its cluster from z (`LatentClassGenerator`),
so no label of the data is used. Clusters are computed once, before training, on the images'
leading principal components; the same data and seed give the same clusters on every process
of a DDP run and on a resumed run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

# Principal components the clustering sees: all an 8×8 digit holds (64 pixels, however upscaled)
# and the coarse shape of larger images, while PCA and k-means stay cheap next to training (the
# train stage logs their seconds).
PCA_DIM = 64
# k-means restarts (scikit-learn's default count): the best of them by inertia is kept.
N_INIT = 10


def cluster_names(k: int) -> tuple[str, ...]:
    """The class names a clustered generator carries: "cluster 0" .. "cluster k-1"."""
    return tuple(f"cluster {i}" for i in range(k))


class Clusters:
    """k-means clusters of a training set (on its leading principal components): `labels` [N]
    holds each training sample's cluster; `assign` places other samples (a held-out split)."""

    def __init__(self, data: torch.Tensor, k: int, seed: int = 0) -> None:
        """Cluster `data` (images [N, C, H, W] or points [N, D]) into `k` clusters.

        Raises ValueError when there are fewer samples than clusters, or a cluster stays empty.
        """
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        n = len(data)
        if k < 2:
            raise ValueError(f"clusters = {k}: clustering needs at least 2 clusters")
        if n < k:
            raise ValueError(
                f"clusters = {k} but the training split holds {n} samples: set train.clusters "
                f"to at most {n}, or 0 for no clusters"
            )
        x = _rows(data)
        dim = min(PCA_DIM, n, x.shape[1])
        self.pca = PCA(dim, random_state=seed).fit(x) if x.shape[1] > dim else None
        self.kmeans = KMeans(k, n_init=N_INIT, random_state=seed)
        ids = self.kmeans.fit_predict(self._project(x))
        counts = np.bincount(ids, minlength=k)
        if (counts == 0).any():
            raise ValueError(
                f"clusters = {k}: k-means left {int((counts == 0).sum())} cluster(s) empty on "
                f"{n} samples (too few distinct ones); set train.clusters lower"
            )
        self.labels = torch.as_tensor(ids, dtype=torch.long)
        self.names = cluster_names(k)

    def assign(self, data: torch.Tensor) -> torch.Tensor:
        """The nearest cluster of each sample of `data` (shaped as the training data) -> [M]."""
        if not len(data):
            return torch.zeros(0, dtype=torch.long)
        ids = self.kmeans.predict(self._project(_rows(data)))
        return torch.as_tensor(ids, dtype=torch.long)

    def _project(self, x: np.ndarray) -> np.ndarray:
        return self.pca.transform(x) if self.pca is not None else x


def _rows(data: torch.Tensor) -> np.ndarray:
    # float64 rows; k-means and PCA do not mind the scale (uint8 or model range)
    return data.reshape(len(data), -1).double().numpy()


@dataclass(frozen=True)
class TrainingLabels:
    """What G and D are trained with: labels [N] (or None), their class count and names, and
    the `Clusters` they came from when the config asks for clusters."""

    labels: torch.Tensor | None
    num_classes: int
    class_names: tuple[str, ...]
    clusters: Clusters | None = None


def training_labels(
    clusters: int,
    data: torch.Tensor,
    labels: torch.Tensor | None,
    num_classes: int,
    class_names: Sequence[str] = (),
    seed: int = 0,
) -> TrainingLabels:
    """The data's labels, or with `clusters` (train.clusters) > 0 the data's k-means clusters
    in their place."""
    if not clusters:
        return TrainingLabels(labels, num_classes, tuple(class_names))
    found = Clusters(data, clusters, seed)
    return TrainingLabels(found.labels, clusters, found.names, found)
