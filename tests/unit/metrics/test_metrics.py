"""The metric functions against known answers: closed forms, identities, toy data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.metrics import (
    class_coverage,
    conditional_accuracy,
    frechet_distance,
    frechet_distance_gaussians,
    inception_score,
    jensen_shannon_1d,
    kernel_inception_distance,
    parzen_log_likelihood,
    parzen_score,
    precision_recall,
    ring_coverage,
    value_function,
)


def _gaussian(n: int, mu: np.ndarray, cov: np.ndarray, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.multivariate_normal(mu, cov, size=n))


def test_fid_matches_closed_form_frechet_distance_of_two_gaussians() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    cov1, cov2 = a @ a.T + 0.5 * np.eye(4), b @ b.T + 0.5 * np.eye(4)
    mu1, mu2 = np.zeros(4), np.array([1.0, -0.5, 0.25, 2.0])
    exact = frechet_distance_gaussians(mu1, cov1, mu2, cov2)
    estimate = frechet_distance(_gaussian(200_000, mu1, cov1, 1), _gaussian(200_000, mu2, cov2, 2))
    assert exact > 5
    assert estimate == pytest.approx(exact, rel=0.02)
    # the closed form itself: means only, identical covariances
    assert frechet_distance_gaussians(mu1, cov1, mu2, cov1) == pytest.approx(mu2 @ mu2, rel=1e-6)


def test_fid_of_a_set_against_itself_is_zero_and_a_shift_adds_its_square() -> None:
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(x, x)) < 1e-6
    assert frechet_distance(x, x + 3.0) == pytest.approx(16 * 9.0, rel=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(600, 8, generator=gen), torch.randn(600, 8, generator=gen)
    same_mean, same_std, size = kernel_inception_distance(a, b, subsets=20, subset_size=1000)
    assert size == 600  # capped at the smaller set
    assert abs(same_mean) < 0.01 and same_std < 1e-9  # every subset is the whole set
    shifted, _, _ = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert shifted > 0.1 > abs(same_mean)


def test_kid_and_is_are_deterministic_for_a_seed_and_leave_the_global_rng_alone() -> None:
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(300, 8, generator=gen), torch.randn(300, 8, generator=gen) + 0.3
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = kernel_inception_distance(a, b, subsets=10, subset_size=100, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert kernel_inception_distance(a, b, subsets=10, subset_size=100, seed=5) == first
    logits = torch.randn(500, 10, generator=gen)
    assert inception_score(logits, 5, seed=3) == inception_score(logits, 5, seed=3)


def test_inception_score_of_confident_evenly_spread_predictions_is_the_class_count() -> None:
    k = 10
    logits = torch.full((1000, k), -50.0)
    logits[torch.arange(1000), torch.arange(1000) % k] = 50.0
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(k, rel=1e-6)
    assert std == 0.0
    mean10, _ = inception_score(logits, splits=10)  # random splits: close to k, not above
    assert 0.9 * k < mean10 <= k + 1e-6
    collapsed = torch.zeros(1000, k)
    collapsed[:, 3] = 50.0
    assert inception_score(collapsed, splits=10)[0] == pytest.approx(1.0, abs=1e-6)


def test_precision_recall_separate_fidelity_from_diversity() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(800, 4, generator=gen)
    assert precision_recall(real, torch.randn(800, 4, generator=gen)) > (0.8, 0.8)
    collapsed = 0.05 * torch.randn(800, 4, generator=gen)  # realistic but not diverse
    p, r = precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.2
    far = torch.randn(800, 4, generator=gen) + 10.0  # neither
    assert precision_recall(real, far) == (0.0, 0.0)


def test_class_coverage_histogram_kl_and_covered_classes() -> None:
    real = torch.arange(1000) % 10
    even = class_coverage(torch.arange(5000) % 10, real, 10)
    assert even["classes_covered"] == 10 and even["class_kl"] == pytest.approx(0.0, abs=1e-12)
    assert even["generated"] == [500] * 10 and even["real"] == [100] * 10
    one = class_coverage(torch.full((5000,), 7), real, 10)
    assert one["classes_covered"] == 1 and one["class_kl"] == pytest.approx(math.log(10))
    # three stray predictions do not cover a class
    pred = torch.cat([torch.arange(4997) % 5, torch.tensor([8, 8, 9])])
    assert class_coverage(pred, real, 10)["classes_covered"] == 5
    assert conditional_accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.75


def test_ring_coverage_counts_modes_and_high_quality_samples() -> None:
    angles = 2 * math.pi * torch.arange(8) / 8
    centres = torch.stack([2 * angles.cos(), 2 * angles.sin()], dim=1)
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(4000) % 8
    points = centres[labels] + 0.02 * torch.randn(4000, 2, generator=gen)
    full = ring_coverage(points, centres, 0.02)
    assert full["modes_covered"] == 8 and full["high_quality_fraction"] > 0.98
    three = ring_coverage(points[labels < 3], centres, 0.02)
    assert three["modes_covered"] == 3
    blurred = ring_coverage(torch.randn(4000, 2, generator=gen), centres, 0.02)
    assert blurred["high_quality_fraction"] < 0.05


def test_jsd_1d_is_zero_for_the_data_distribution_and_log2_for_disjoint_ones() -> None:
    gen = torch.Generator().manual_seed(0)
    same = 4.0 + 0.5 * torch.randn(10_000, 1, generator=gen)
    assert jensen_shannon_1d(same, mean=4.0, std=0.5) < 0.005
    assert jensen_shannon_1d(same, real=4.0 + 0.5 * torch.randn(10_000, 1, generator=gen)) < 0.01
    far = -4.0 + 0.5 * torch.randn(10_000, 1, generator=gen)
    assert jensen_shannon_1d(far, mean=4.0, std=0.5) == pytest.approx(math.log(2), abs=0.01)
    half = 4.0 + 1.0 * torch.randn(10_000, 1, generator=gen)  # wrong width: in between
    assert 0.01 < jensen_shannon_1d(half, mean=4.0, std=0.5) < 0.2
    # a collapsed generator (one point) is far from the data but still gives a number
    assert jensen_shannon_1d(torch.full((1000, 1), 4.0), mean=4.0, std=0.5) > 0.3


def test_value_function_of_an_undecided_discriminator_is_minus_log4() -> None:
    class Half(torch.nn.Module):
        def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return torch.zeros(len(x))

    v = value_function(Half(), torch.randn(100, 1), torch.randn(50, 1))
    assert v["value"] == pytest.approx(-math.log(4)) and v["value_gap"] == pytest.approx(0.0)
    assert v["d_real"] == v["d_fake"] == 0.5


def test_parzen_window_matches_a_direct_gaussian_mixture_and_picks_sigma_on_val() -> None:
    gen = torch.Generator().manual_seed(0)
    samples = torch.rand(50, 6, generator=gen)
    data = torch.rand(7, 6, generator=gen)
    sigma = 0.3
    ll = parzen_log_likelihood(samples, data, [sigma], block=3)[0]
    cov = sigma**2 * torch.eye(6).double()
    dist = torch.distributions.MultivariateNormal(samples.double(), cov)
    direct = torch.logsumexp(dist.log_prob(data.double()[:, None, :]), dim=1) - math.log(50)
    assert torch.allclose(ll, direct, atol=1e-4)
    # data drawn like the samples: the chosen sigma is neither the smallest nor the largest
    centres = torch.rand(20, 6, generator=gen)
    draw = lambda n: centres[torch.randint(0, 20, (n,), generator=gen)]  # noqa: E731
    noisy = lambda n: draw(n) + 0.1 * torch.randn(n, 6, generator=gen)  # noqa: E731
    sigmas = [0.01, 0.03, 0.1, 0.3, 1.0]
    score = parzen_score(noisy(500), noisy(200), noisy(200), sigmas)
    assert score["parzen_sigma"] in (0.03, 0.1, 0.3)
    assert score["parzen_ll_se"] > 0 and math.isfinite(score["parzen_ll"])
    # uint8 images are scaled to [0, 1]
    img = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8, generator=gen)
    a = parzen_log_likelihood(img, img[:3], [0.2])
    b = parzen_log_likelihood(img.float() / 255, img[:3].float() / 255, [0.2])
    assert torch.allclose(a, b)
