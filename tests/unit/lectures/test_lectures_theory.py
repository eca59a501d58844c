"""ganforge.lectures.theory: D*, C(G) = −log 4 + 2·JSD and the G losses' gradients, checked
against closed forms (Goodfellow et al. 2014, Proposition 1, Theorem 1 and section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.data.toy import grid_modes, ring_modes
from ganforge.lectures.theory import (
    ToyDistribution,
    binned_jsd,
    game_value_at_optimum,
    generator_logit_gradients,
    jensen_shannon_discrete,
    jensen_shannon_grid,
    optimal_discriminator,
    value_on_grid,
)
from ganforge.losses import LOG4

X = np.linspace(-20.0, 20.0, 40001)
CELL = float(X[1] - X[0])
P_DATA, P_G = stats.norm(0.0, 1.0), stats.norm(1.0, 1.5)  # the pair of unit/theory/test_theory.py


def test_optimal_discriminator_is_one_half_where_the_densities_match() -> None:
    p = P_DATA.pdf(X)
    np.testing.assert_allclose(optimal_discriminator(p, p)[p > 0], 0.5)
    d = optimal_discriminator(P_DATA.pdf(X), P_G.pdf(X))
    # the two normal densities cross where D* = 1/2 and nowhere else in between
    crossings = X[np.nonzero(np.diff(np.sign(P_DATA.pdf(X) - P_G.pdf(X))))[0]]
    for x in crossings:
        i = int(np.argmin(np.abs(X - x)))
        assert d[i] == pytest.approx(0.5, abs=1e-3)
    # off both supports D* is not defined: NaN, not a made-up 0 or 1/2
    assert np.isnan(optimal_discriminator(np.array([0.0, 1.0]), np.array([0.0, 0.0]))[0])


def test_value_at_d_star_is_minus_log4_plus_2_jsd_on_a_closed_form_pair() -> None:
    p, q = P_DATA.pdf(X), P_G.pdf(X)
    d_star = optimal_discriminator(p, q)
    jsd = jensen_shannon_grid(p, q, CELL)
    assert 0.0 < jsd < math.log(2)
    assert value_on_grid(d_star, p, q, CELL) == pytest.approx(game_value_at_optimum(jsd), abs=1e-6)
    assert game_value_at_optimum(jsd) == pytest.approx(-LOG4 + 2 * jsd)
    # D* is the best D: any other D is worth less to D (Proposition 1)
    for other in (np.clip(d_star + 0.05, 1e-9, 1 - 1e-9), np.full_like(d_star, 0.5)):
        assert value_on_grid(other, p, q, CELL) < value_on_grid(d_star, p, q, CELL)
    # at the global optimum p_g = p_data: V(D*, G) = -log 4 and JSD = 0
    assert jensen_shannon_grid(p, p, CELL) == pytest.approx(0.0, abs=1e-12)
    assert value_on_grid(optimal_discriminator(p, p), p, p, CELL) == pytest.approx(-LOG4)


def test_discrete_jsd_is_zero_for_equal_and_log2_for_disjoint_distributions() -> None:
    assert jensen_shannon_discrete([0.2, 0.8], [2.0, 8.0]) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon_discrete([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.log(2))
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    expected = 0.5 * (0.5 * math.log(2) + 0.5 * math.log(1.0)) * 2  # half the mass disjoint
    assert jensen_shannon_discrete(p, q) == pytest.approx(expected)


def _three_of(modes: int) -> float:
    """JSD of p_data (equal weight on `modes` separated modes) and p_g on 3 of them only."""
    pm, pq = 1.0 / modes, 1.0 / 3.0
    data_side = 3 * pm * math.log(2 * pm / (pm + pq)) + (modes - 3) * pm * math.log(2)
    g_side = 3 * pq * math.log(2 * pq / (pm + pq))
    return 0.5 * data_side + 0.5 * g_side


@pytest.mark.parametrize("centres", [ring_modes(), grid_modes()], ids=["ring", "grid"])
def test_binned_jsd_sees_collapse_smearing_and_the_optimum(centres: np.ndarray) -> None:
    dist = ToyDistribution(centres, 0.02)
    rng = np.random.default_rng(0)
    n = 2000
    # G = p_data: only the histogram's noise, about (cells with mass) / (8 n)
    cells_with_mass = 4 * len(centres)  # at most 2 x 2 cells of side 6 sigma per mode
    assert binned_jsd(dist.sample(n, rng), dist) < cells_with_mass / (8 * n) * 2
    # collapse onto 3 modes: the exact JSD of the two mixtures (the modes do not overlap)
    three = ToyDistribution(centres[:3], 0.02).sample(n, rng)
    assert binned_jsd(three, dist) == pytest.approx(_three_of(len(centres)), abs=0.01)
    # a blob where p_data has no mass: the maximum, log 2
    blob = rng.normal(0.0, 0.3, size=(n, 2)) + np.array([0.0, 0.7])
    if len(centres) == 8:  # ring: the blob lies inside the ring
        assert binned_jsd(blob, dist) == pytest.approx(math.log(2), abs=0.01)
    # half the samples smeared between the modes: JSD of q = p/2 + uniform/2, p on the modes
    smear = np.concatenate(
        [dist.sample(n // 2, rng), rng.uniform(centres.min(0), centres.max(0), (n // 2, 2))]
    )
    exact = 0.5 * math.log(4 / 3) + 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    assert binned_jsd(smear, dist) == pytest.approx(exact, abs=0.02)


def test_logit_gradients_are_the_closed_forms_of_both_generator_losses() -> None:
    logits = torch.tensor([-12.0, -6.0, -2.0, 0.0, 2.0, 6.0])
    grads = generator_logit_gradients(logits)
    d = torch.sigmoid(logits.double())
    # minimax: |d/dl log(1 - sigmoid(l))| = sigmoid(l) = D(G(z)), vanishing as D rejects fakes
    torch.testing.assert_close(grads["minimax"], d, rtol=1e-5, atol=1e-7)
    # non-saturating: |d/dl -log sigmoid(l)| = 1 - sigmoid(l), near 1 where minimax vanishes
    torch.testing.assert_close(grads["non_saturating"], 1 - d, rtol=1e-5, atol=1e-7)
    assert grads["minimax"][0] < 1e-5 < 0.99 < grads["non_saturating"][0]
    # per sample: the batch mean's gradient is scaled back, so the batch size does not matter
    one = generator_logit_gradients(logits[:1])
    assert one["minimax"].item() == pytest.approx(grads["minimax"][0].item(), rel=1e-5)


def test_toy_distribution_comes_from_meta_json() -> None:
    gauss = ToyDistribution.from_meta({"dataset": "gaussian_1d", "mean": 4.0, "std": 0.5})
    assert gauss is not None and gauss.dim == 1 and gauss.num_modes == 1
    x = np.linspace(0, 8, 8001)[:, None]
    np.testing.assert_allclose(gauss.pdf(x), stats.norm(4.0, 0.5).pdf(x[:, 0]), rtol=1e-9)
    ring = ToyDistribution.from_meta({"dataset": "ring_2d", "modes": ring_modes().tolist(),
                                      "mode_std": 0.02})  # fmt: skip
    assert ring is not None and ring.dim == 2 and ring.num_modes == 8
    sample = ring.sample(4000, np.random.default_rng(0))
    assert sample.dtype == np.float32
    assert np.linalg.norm(sample, axis=1).mean() == pytest.approx(2.0, abs=0.01)
    # a 2-D density integrates to 1 (on a grid fine enough for sigma 0.02)
    g = np.linspace(-2.2, 2.2, 1101)
    xx, yy = np.meshgrid(g, g)
    dens = ring.pdf(np.stack([xx.ravel(), yy.ravel()], axis=1))
    assert dens.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=0.01)
    assert ToyDistribution.from_meta({"dataset": "digits", "kind": "images"}) is None
