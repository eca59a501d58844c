"""DiffAugment and the R1 penalty at the level of their definitions, and how the loop uses them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.config import TrainConfig
from ganforge.training import GANTrainer, fit, make_spec
from ganforge.training import step as step_module
from ganforge.training.augment import cutout, diff_augment, translation
from ganforge.training.step import r1_penalty

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- R1
def test_r1_equals_the_squared_gradient_norm_computed_by_hand() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 1, 4, 4, generator=gen, dtype=torch.float64).requires_grad_(True)
    w = torch.randn(1, 1, 4, 4, generator=gen, dtype=torch.float64)
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    # D(x) = a · Σ w x² : ∂D/∂x = 2 a w x, so ||∇_x D||² = 4 a² Σ (w x)² per sample.
    logits = a * (w * x.square()).sum(dim=(1, 2, 3))
    penalty = r1_penalty(logits, x)
    by_hand = (4 * a.detach() ** 2 * (w * x.detach()).square().sum(dim=(1, 2, 3))).mean()
    torch.testing.assert_close(penalty.double(), by_hand)
    # and it is differentiable in D's weights: d/da = 2 · penalty / a
    (grad_a,) = torch.autograd.grad(penalty, a)
    torch.testing.assert_close(grad_a.double(), 2 * by_hand / a.detach())


def test_lazy_r1_runs_every_nth_step_with_its_weight(monkeypatch) -> None:
    x = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8)
    config = TrainConfig(
        nz=4, ngf=4, ndf=4, batch_size=16, max_steps=6, device="cpu", r1_gamma=2.0, r1_every=3
    )
    calls: list[int] = []
    real_r1 = step_module.r1_penalty

    def spy(logits, real):
        calls.append(trainer.step)
        return real_r1(logits, real)

    monkeypatch.setattr(step_module, "r1_penalty", spy)
    trainer = GANTrainer(config, make_spec(config, x.shape[1:]), x, seed=0)
    trainer.fit()
    assert calls == [0, 3]


# ----------------------------------------------------------------------------- DiffAugment
def _zero_shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved by (dy, dx) pixels with zeros coming in (the translation the paper means)."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    padded = F.pad(x, [p, p, p, p])
    return padded[..., p - dy : p - dy + h, p - dx : p - dx + w]


def test_translation_is_an_integer_shift_within_an_eighth_with_zero_fill() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 2, 32, 32) + 0.5  # no zeros of its own
    out = translation(x)
    for img, aug in zip(x, out, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if torch.equal(_zero_shift(img, dy, dx), aug)
        ]
        assert len(matches) == 1


def test_cutout_zeroes_one_square_of_half_the_side() -> None:
    torch.manual_seed(0)
    x = torch.rand(32, 1, 16, 16) + 0.5
    out = cutout(x)
    for img, aug in zip(x, out, strict=True):
        zero = aug[0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        # one axis-aligned rectangle, at most 8×8 (clipped at the border), the rest untouched
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8
        assert int(zero.sum()) == len(rows) * len(cols)
        assert torch.equal(aug[0][~zero], img[0][~zero])


@pytest.mark.parametrize(
    "policy", [["translation"], ["cutout"], ["color"], ["color", "translation", "cutout"]]
)
def test_diff_augment_is_differentiable_wrt_its_input(policy: list[str]) -> None:
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, requires_grad=True)

    def fixed(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(1)  # the same random transform at every call of gradcheck
        return diff_augment(inp, policy)

    assert torch.autograd.gradcheck(fixed, (x,))
    fixed(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_diff_augment_off_is_the_identity_and_unknown_names_are_refused() -> None:
    x = torch.randn(2, 1, 8, 8)
    assert diff_augment(x, []) is x
    with pytest.raises(ValueError, match="flip"):
        diff_augment(x, ["flip"])


def test_same_draws_give_the_same_transform_to_real_and_fake() -> None:
    # One family, one code path: with the same random stream, a real and a fake batch get the
    # very same shifts and cut squares (the masks of both are equal).
    real, fake = torch.rand(8, 1, 16, 16) + 0.5, torch.rand(8, 1, 16, 16) + 0.5
    torch.manual_seed(3)
    a = diff_augment(real, ["translation", "cutout"])
    torch.manual_seed(3)
    b = diff_augment(fake, ["translation", "cutout"])
    assert torch.equal(a == 0, b == 0)


def test_trainer_augments_real_and_fake_in_both_steps(monkeypatch) -> None:
    x = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8)
    config = TrainConfig(
        nz=4,
        ngf=4,
        ndf=4,
        batch_size=16,
        max_steps=1,
        device="cpu",
        augment=["translation"],
        r1_gamma=0.0,  # R1 would hand D a real batch that requires grad
    )
    seen: list[tuple[bool, list[str]]] = []
    real_augment = step_module.diff_augment

    def spy(images, policy):
        seen.append((images.requires_grad, list(policy)))
        return real_augment(images, policy)

    monkeypatch.setattr(step_module, "diff_augment", spy)
    GANTrainer(config, make_spec(config, x.shape[1:]), x, seed=0).fit()
    # D's step: real (no grad), fake (detached); G's step: fake with G's graph
    assert seen == [(False, ["translation"]), (False, ["translation"]), (True, ["translation"])]


def test_augment_is_skipped_for_toy_points() -> None:
    points = torch.randn(64, 2)
    config = TrainConfig(
        model="mlp", ngf=8, ndf=8, batch_size=16, max_steps=2, device="cpu",
        augment=["translation", "cutout"], maxout_pieces=0,
    )  # fmt: skip
    assert fit(config, points, seed=0).step == 2


def test_mode_seeking_loss_is_the_inverse_distance_ratio() -> None:
    from ganforge.losses import mode_seeking_loss

    a, b = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    za, zb = torch.zeros(2, 3), torch.full((2, 3), 2.0)
    # mean |a - b| = 0.5, mean |za - zb| = 2: ratio 0.25 -> 1 / (0.25 + 1e-5)
    assert mode_seeking_loss(a, b, za, zb).item() == pytest.approx(1 / (0.25 + 1e-5))
    # more distinct images for the same latent distance lower it
    assert mode_seeking_loss(a, 2 * b, za, zb) < mode_seeking_loss(a, b, za, zb)


def test_mode_seeking_pairs_fakes_of_one_class_and_trains() -> None:
    from ganforge.training import GANTrainer, make_spec

    x = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8)
    y = torch.arange(64) % 4
    cfg = TrainConfig(nz=8, ngf=4, ndf=4, batch_size=16, max_steps=2, device="cpu",
                      labels="latent", mode_seeking=1.0)  # fmt: skip
    trainer = GANTrainer(cfg, make_spec(cfg, (1, 16, 16), 4, (), y), x, y, seed=0)
    z, labels = trainer.latents(16, y[:16])
    assert torch.equal(labels[:8], labels[8:]) and torch.equal(labels[:8], y[:8])
    assert not torch.equal(z[:8], z[8:])
    trainer.train_step()
    assert trainer.stats.sums["mode_seeking"] > 0
