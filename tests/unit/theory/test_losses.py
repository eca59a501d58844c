"""GAN objectives: the lectures' worked example, signs, stability, saturation."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.losses import LOG4, discriminator_loss, generator_loss, value_function


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_worked_example_of_the_lectures() -> None:
    # seeds/004: D = 0.9 on 16 real images, 0.2 on 16 fake ones:
    # (16 * -log 0.9 + 16 * -log 0.8) / 32 = (16 * 0.105 + 16 * 0.223) / 32 = 0.164
    real = torch.full((16,), logit(0.9))
    fake = torch.full((16,), logit(0.2))
    for kind in ("minimax", "non_saturating"):
        loss = discriminator_loss(real, fake, kind)
        assert loss.item() == pytest.approx(0.164, abs=5e-4)
        assert loss.item() == pytest.approx((-math.log(0.9) - math.log(0.8)) / 2, rel=1e-6)
    assert value_function(real, fake).item() == pytest.approx(-2 * 0.16425, abs=1e-3)


def test_generator_losses_have_the_right_signs() -> None:
    fake = torch.full((8,), logit(0.2))
    # minimax: G minimises E[log(1 - D(G(z)))]; non-saturating: -E[log D(G(z))]
    assert generator_loss(fake, "minimax").item() == pytest.approx(math.log(0.8), rel=1e-6)
    assert generator_loss(fake, "non_saturating").item() == pytest.approx(-math.log(0.2))
    assert generator_loss(fake, "hinge").item() == pytest.approx(-logit(0.2))
    # fooling D more lowers every G loss
    better = torch.full((8,), logit(0.6))
    for kind in ("minimax", "non_saturating", "hinge"):
        assert generator_loss(better, kind) < generator_loss(fake, kind)


def test_optimum_value_is_minus_log_4() -> None:
    half = torch.zeros(10)  # D = 1/2 everywhere
    assert value_function(half, half).item() == pytest.approx(-LOG4)
    assert discriminator_loss(half, half).item() == pytest.approx(math.log(2))


def _grad_wrt_logit(d_of_fake: float, kind: str) -> float:
    lg = torch.tensor([logit(d_of_fake)], dtype=torch.float64, requires_grad=True)
    generator_loss(lg, kind).backward()
    return abs(lg.grad.item())


def test_minimax_generator_gradient_vanishes_when_d_rejects_fakes() -> None:
    # Goodfellow et al. 2014, sec. 3: log(1 - D(G(z))) saturates early in training.
    for p in (1e-2, 1e-4, 1e-6):
        assert _grad_wrt_logit(p, "minimax") == pytest.approx(p, rel=1e-3)  # d/dl = sigmoid(l)
        assert _grad_wrt_logit(p, "non_saturating") == pytest.approx(1 - p, rel=1e-3)
    assert _grad_wrt_logit(1e-6, "minimax") < 1e-5
    assert _grad_wrt_logit(1e-6, "non_saturating") > 0.99


def test_losses_are_finite_at_extreme_logits() -> None:
    big = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True)
    for kind in ("minimax", "non_saturating", "hinge"):
        d = discriminator_loss(big, big, kind, 0.1 if kind != "hinge" else 0.0)
        g = generator_loss(big, kind)
        (d + g).backward()
        assert torch.isfinite(d) and torch.isfinite(g) and torch.isfinite(big.grad).all()
        big.grad = None


def test_one_sided_label_smoothing_moves_only_the_real_target() -> None:
    real, fake = torch.full((4,), 3.0), torch.full((4,), -3.0)
    plain = discriminator_loss(real, fake, "non_saturating", 0.0)
    smooth = discriminator_loss(real, fake, "non_saturating", 0.1)
    assert smooth > plain
    # fake term unchanged: with real logits where BCE(l, 0.9) is minimal the difference vanishes
    l_opt = torch.full((4,), logit(0.9))
    at_target = discriminator_loss(l_opt, fake, "non_saturating", 0.1)
    entropy = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    fake_term = torch.nn.functional.softplus(fake).mean().item()
    assert at_target.item() == pytest.approx((entropy + fake_term) / 2, rel=1e-5)


def test_hinge_discriminator_loss() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # relu(1 - real) = [0, 0.5], relu(1 + fake) = [0, 1.5]
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx((0.25 + 0.75) / 2)


def test_unknown_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown GAN objective"):
        generator_loss(torch.zeros(2), "wasserstein")  # type: ignore[arg-type]
