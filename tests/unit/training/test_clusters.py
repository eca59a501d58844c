"""k-means clusters in place of labels: they find the data's groups, place held-out samples,
repeat for a seed, say what is wrong with an impossible request, and train a latent-cluster G."""

from __future__ import annotations

import pytest
import torch
from tiny_training import tiny_config, tiny_images

from ganforge.models.latent_class import LatentClassGenerator
from ganforge.training import fit
from ganforge.training.clusters import Clusters


def _blobs(n_per: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 1×16×16 images of 3 groups: a bright square in one of three places, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 40, (3 * n_per, 1, 16, 16), dtype=torch.uint8, generator=gen)
    group = torch.arange(3 * n_per) % 3
    for g, (r, c) in enumerate([(0, 0), (0, 10), (10, 5)]):
        x[group == g, :, r : r + 6, c : c + 6] = 230
    return x, group


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether labellings `a` and `b` split the samples alike (up to renaming the groups)."""
    pairs = {(int(i), int(j)) for i, j in zip(a, b, strict=True)}
    return len(pairs) == len({i for i, _ in pairs}) == len({j for _, j in pairs})


def test_clusters_find_the_groups_and_place_held_out_samples_in_them() -> None:
    train, groups = _blobs(40, seed=0)
    clusters = Clusters(train, 3, seed=0)
    assert clusters.labels.dtype == torch.long and clusters.labels.shape == (120,)
    assert _same_partition(clusters.labels, groups)
    assert clusters.names == ("cluster 0", "cluster 1", "cluster 2")
    held_out, held_groups = _blobs(10, seed=1)
    assigned = clusters.assign(held_out)
    # a held-out sample lands in the cluster of the training samples of its group
    to_cluster = {int(g): int(c) for g, c in zip(groups, clusters.labels, strict=True)}
    assert assigned.tolist() == [to_cluster[int(g)] for g in held_groups]
    assert clusters.assign(held_out[:0]).shape == (0,)


def test_clusters_repeat_for_a_seed_and_points_cluster_too() -> None:
    images, _ = tiny_images(64)
    assert torch.equal(Clusters(images, 4, seed=3).labels, Clusters(images, 4, seed=3).labels)
    points = torch.cat([torch.randn(50, 2) * 0.1 + 5, torch.randn(50, 2) * 0.1 - 5])
    labels = Clusters(points, 2, seed=0).labels
    assert _same_partition(labels, torch.arange(100) >= 50)


def test_an_impossible_clustering_says_which_key_to_change() -> None:
    images, _ = tiny_images(8)
    with pytest.raises(ValueError, match="clusters = 10 but the training split holds 8 samples"):
        Clusters(images, 10)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        Clusters(images, 1)
    two_distinct = torch.cat([images[:1].repeat(5, 1, 1, 1), images[1:2].repeat(5, 1, 1, 1)])
    with pytest.warns(match="distinct clusters"), pytest.raises(ValueError, match="empty"):
        Clusters(two_distinct, 3)


def test_fit_with_clusters_trains_g_to_draw_its_cluster_from_z() -> None:
    images, _ = tiny_images(64)
    result = fit(tiny_config(clusters=4, max_steps=2), images, None)
    spec = result.spec
    assert spec.num_classes == 4 and spec.class_names == tuple(f"cluster {i}" for i in range(4))
    counts = torch.bincount(Clusters(images, 4, seed=0).labels, minlength=4) / 64
    assert spec.class_prior == pytest.approx(counts.tolist())
    assert isinstance(result.generator, LatentClassGenerator)
    assert result.generator(torch.randn(5, spec.nz)).shape == (5, 1, 16, 16)


def test_a_spec_without_the_clusters_is_refused() -> None:
    from ganforge.training import make_spec

    with pytest.raises(ValueError, match="pass the training data's clusters"):
        make_spec(tiny_config(clusters=4), (1, 16, 16), 10, (), torch.arange(16) % 10)
