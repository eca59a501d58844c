"""The toy problems' measures (ring of 8, grid of 25 Gaussians) and a short training that
learns the ring: mass on every mode, within 3 sigma."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.config import EvaluateConfig, TrainConfig
from ganforge.data.toy import grid_modes, ring_2d, ring_modes
from ganforge.metrics import evaluate_toy, mode_coverage, mode_histogram
from ganforge.models import GeneratorSpec
from ganforge.training import fit, make_spec


def test_mode_histogram_counts_only_samples_within_three_sigma() -> None:
    centres = np.array([[0.0, 0.0], [1.0, 0.0]])
    points = torch.tensor([[0.05, 0.0], [0.0, -0.059], [0.061, 0.0], [0.97, 0.0], [0.5, 0.0]])
    counts, good = mode_histogram(points, centres, sigma=0.02)
    # 0.05 and 0.059 are inside 3 sigma = 0.06, 0.061 is not; the midpoint belongs to no mode
    assert counts.tolist() == [2, 1]
    assert good.tolist() == [True, True, False, True, False]


def test_a_mode_needs_a_quarter_of_its_expected_share() -> None:
    centres = ring_modes()
    gen = torch.Generator().manual_seed(0)
    n = 8000  # expected share of one mode: 1000 samples; the rule asks for >= 250
    counts = [1000] * 7 + [0]
    counts[7], counts[0] = 249, 1751  # mode 7 one sample short of a quarter share
    labels = torch.repeat_interleave(torch.arange(8), torch.tensor(counts))
    points = torch.as_tensor(centres)[labels].float() + 0.02 * torch.randn(n, 2, generator=gen)
    short = mode_coverage(points, centres, 0.02)
    hq = short["high_quality_fraction"]
    assert short["modes_covered"] == 7 and 0.98 < hq <= 1.0
    assert short["mode_shares"][7] == pytest.approx(8 * short["samples_per_mode"][7] / n)
    assert "0.25" in short["mode_rule"] and "3 sigma" in short["mode_rule"]
    counts[7], counts[0] = 260, 1740  # safely above: (260 minus the few beyond 3 sigma) / 1000
    labels = torch.repeat_interleave(torch.arange(8), torch.tensor(counts))
    points = torch.as_tensor(centres)[labels].float() + 0.02 * torch.randn(n, 2, generator=gen)
    assert mode_coverage(points, centres, 0.02)["modes_covered"] == 8
    # one stray sample on a dropped mode is not coverage (it was, before the share rule)
    stray = torch.cat([points[labels != 7], torch.as_tensor(centres[7:8]).float()])
    assert mode_coverage(stray, centres, 0.02)["modes_covered"] == 7
    # a smear over the whole ring: few samples within 3 sigma, no mode reaches its quarter
    angles = 2 * torch.pi * torch.rand(n, generator=gen)
    smear = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    smeared = mode_coverage(smear, centres, 0.02)
    assert smeared["high_quality_fraction"] < 0.1 and smeared["modes_covered"] == 0


def test_grid_coverage_uses_the_same_rule() -> None:
    centres = grid_modes()
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(25 * 200) % 24  # the 25th mode (4, 4) dropped
    points = torch.as_tensor(centres)[labels].float() + 0.02 * torch.randn(5000, 2, generator=gen)
    cov = mode_coverage(points, centres, 0.02)
    assert cov["num_modes"] == 25 and cov["modes_covered"] == 24
    assert cov["mode_shares"][24] == 0.0 and cov["high_quality_fraction"] > 0.98


def test_auto_model_resolves_from_the_data_and_dcgan_on_points_is_one_clear_line() -> None:
    assert TrainConfig().model == "auto"
    assert make_spec(TrainConfig(), (2,)).arch == "mlp"
    assert make_spec(TrainConfig(), (1, 32, 32)).arch == "dcgan"
    with pytest.raises(ValueError) as err:
        make_spec(TrainConfig(model="dcgan"), (2,))
    message = str(err.value)
    assert "\n" not in message and "train.model: auto" in message and "(2,)" in message


class _MixtureSampler(torch.nn.Module):
    """A "generator" that draws the mixture exactly, but only from `keep` of its modes."""

    def __init__(self, centres: np.ndarray, keep: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.as_tensor(centres[:keep], dtype=torch.float32))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # z[:, 0] ~ N(0, 1) picks the mode uniformly through its CDF; z[:, 1:] is the noise.
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2**0.5))
        index = (u * len(self.centres)).long().clamp(max=len(self.centres) - 1)
        return self.centres[index] + 0.02 * z[:, 1:3]


@pytest.mark.parametrize(("dataset", "keep"), [("ring_2d", 8), ("grid_2d", 25), ("grid_2d", 20)])
def test_evaluate_toy_states_the_rule_and_the_shares(dataset: str, keep: int) -> None:
    centres = ring_modes() if dataset == "ring_2d" else grid_modes()
    meta = {"dataset": dataset, "modes": centres.tolist(), "mode_std": 0.02}
    sampler = _MixtureSampler(centres, keep)
    spec = GeneratorSpec(arch="auto", nz=3, sample_shape=(2,))
    test = (_MixtureSampler(centres, len(centres))(torch.randn(2000, 3)), torch.zeros(2000))
    m = evaluate_toy(sampler, spec, meta, test, EvaluateConfig(num_samples=5000), seed=0).metrics
    assert m["num_modes"] == len(centres) and m["modes_covered"] == keep
    assert m["high_quality_fraction"] > 0.98 and m["real_modes_covered"] == len(centres)
    assert "quarter" not in m["mode_rule"] and ">= 0.25" in m["mode_rule"]
    shares = np.array(m["mode_shares"])
    assert len(shares) == len(centres) and (shares[keep:] == 0).all()
    assert shares[:keep].mean() == pytest.approx(len(centres) / keep, rel=0.03)


@pytest.mark.slow
def test_short_training_puts_mass_on_every_ring_mode(one_thread) -> None:
    """3000 steps of the ring/grid configuration at widths 64 (a few seconds on a quiet CPU).

    Measured with these settings: all 8 modes at >= 0.69 of their expected share, 82 % of the
    samples within 3 sigma. A smeared ring (today's default) gets ~2 % and no mode; a
    collapsed one fewer than 8 modes.
    """
    data = torch.from_numpy(ring_2d(14000, seed=123).points)
    config = TrainConfig(
        nz=2,
        ngf=64,
        ndf=64,
        maxout_pieces=0,
        dropout=0.0,
        lr_g=1e-3,
        lr_d=1e-3,
        batch_size=256,
        max_steps=3000,
        ema_decay=0.99,
        device="cpu",
        log_every=500,
    )
    result = fit(config, data, seed=0)
    assert result.ema is not None
    g = result.ema.eval()
    with torch.no_grad():
        fake = g(torch.randn(10000, 2, generator=torch.Generator().manual_seed(1)))
    cov = mode_coverage(fake, ring_modes(), 0.02)
    assert cov["modes_covered"] == 8, cov["mode_shares"]
    assert cov["high_quality_fraction"] > 0.6, cov["high_quality_fraction"]
