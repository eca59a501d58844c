"""The latent-class generator: the class is a function of z that follows the data's shares."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.config import TrainConfig
from ganforge.models import GeneratorSpec, build_discriminator, build_generator
from ganforge.models.latent_class import (
    LatentClassGenerator,
    class_prior,
    classes_from_z,
    z_for_classes,
)
from ganforge.training import make_spec

PRIOR = (0.1, 0.25, 0.05, 0.6)


def _inner(prior=PRIOR) -> torch.Tensor:
    return torch.tensor(np.cumsum(prior)[:-1], dtype=torch.float32)


def test_class_prior_counts_shares() -> None:
    labels = torch.tensor([0, 1, 1, 3, 3, 3, 3, 3])
    assert class_prior(labels, 4) == pytest.approx((1 / 8, 2 / 8, 0.0, 5 / 8))


def test_classes_from_z_follow_the_prior_for_standard_normal_z() -> None:
    z0 = torch.randn(400_000, generator=torch.Generator().manual_seed(0))
    shares = torch.bincount(classes_from_z(z0, _inner()), minlength=4).double() / z0.numel()
    # 4 standard errors of a binomial share at n = 400k is < 0.004
    assert shares.tolist() == pytest.approx(PRIOR, abs=0.004)


def test_classes_from_z_cuts_at_the_normal_quantiles() -> None:
    # Φ⁻¹(0.1) = -1.2816: just below is class 0, just above class 1; Φ⁻¹(0.35) = -0.3853
    z0 = torch.tensor([-1.29, -1.27, -0.39, -0.38, 3.0])
    assert classes_from_z(z0, _inner()).tolist() == [0, 1, 1, 2, 3]


def test_z_for_classes_lands_in_each_labels_interval() -> None:
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (5000,), generator=gen)
    u = torch.rand(5000, generator=gen)
    u[:4] = torch.tensor([0.0, 1.0 - 1e-7, 0.5, 1e-9])  # the interval ends too
    z0 = z_for_classes(labels, PRIOR, u)
    assert torch.isfinite(z0).all()
    assert torch.equal(classes_from_z(z0, _inner()), labels)


def test_z_for_classes_is_standard_normal_when_labels_follow_the_prior() -> None:
    gen = torch.Generator().manual_seed(2)
    n = 200_000
    labels = torch.multinomial(torch.tensor(PRIOR), n, replacement=True, generator=gen)
    z0 = z_for_classes(labels, PRIOR, torch.rand(n, generator=gen)).double()
    assert z0.mean().item() == pytest.approx(0.0, abs=0.01)
    assert z0.std().item() == pytest.approx(1.0, abs=0.01)
    below_one = 0.5 * (1 + math.erf(2**-0.5))  # the normal CDF at 1: 0.8413
    assert (z0 < 1.0).double().mean().item() == pytest.approx(below_one, abs=0.005)


def _spec(**kw) -> GeneratorSpec:
    base = dict(arch="dcgan", nz=8, sample_shape=(1, 16, 16), num_classes=4, ngf=4, ndf=4)
    return GeneratorSpec(**{**base, **kw})


def test_a_latent_class_spec_builds_a_z_only_generator_and_a_conditional_d() -> None:
    spec = _spec(class_prior=PRIOR)
    assert spec.latent_class and spec.labelled and not spec.conditional
    g = build_generator(spec).eval()
    assert isinstance(g, LatentClassGenerator)
    z = torch.randn(6, 8)
    inner = g.conditional
    with torch.no_grad():
        out = g(z)
        # the same as the conditional network told the class that z[:, 0] draws
        assert torch.equal(out, inner(z, classes_from_z(z[:, 0], _inner())))
    with pytest.raises(ValueError, match="pass z only"):
        g(z, torch.zeros(6, dtype=torch.long))
    d = build_discriminator(spec)
    assert d(out, torch.zeros(6, dtype=torch.long)).shape == (6,)


@pytest.mark.parametrize(
    ("prior", "match"),
    [((0.5, 0.5), "one share per class"), ((0.5, 0.6, -0.1, 0.0), "positive shares")],
)
def test_a_bad_class_prior_is_refused(prior, match) -> None:
    with pytest.raises(ValueError, match=match):
        _spec(class_prior=prior)


def test_make_spec_labels_auto_is_latent_for_labelled_images_only() -> None:
    labels = torch.tensor([0, 1, 1, 2, 2, 2])
    cfg = TrainConfig(ngf=4, ndf=4, nz=8, labels="auto")
    spec = make_spec(cfg, (1, 16, 16), 3, ("a", "b", "c"), labels)
    assert spec.class_prior == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    # toy points, no labels, labels: none, a cGAN: no latent class
    assert not make_spec(cfg, (2,), 3, (), labels).latent_class
    assert not make_spec(cfg, (1, 16, 16), 0, (), None).latent_class
    off = TrainConfig(ngf=4, ndf=4, nz=8)  # the library's default: a label-free GAN
    assert make_spec(off, (1, 16, 16), 3, (), labels).num_classes == 0
    cgan = TrainConfig(ngf=4, ndf=4, nz=8, labels="conditional")
    assert make_spec(cgan, (1, 16, 16), 3, (), labels).conditional


def test_labels_latent_needs_labels_and_labels_is_one_choice() -> None:
    with pytest.raises(ValueError, match="no class labels"):
        make_spec(TrainConfig(labels="latent"), (1, 16, 16), 0, (), None)
    with pytest.raises(ValueError, match="no class labels"):
        make_spec(TrainConfig(labels="conditional"), (1, 16, 16), 0, (), None)
    with pytest.raises(ValueError, match="'auto', 'none', 'conditional' or 'latent'"):
        TrainConfig(labels="yes")


def test_training_shows_d_each_fake_with_the_class_g_drew_from_z() -> None:
    from ganforge.training import GANTrainer

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8, generator=gen)
    y = torch.tensor([0] * 8 + [1] * 16 + [2] * 40)
    cfg = TrainConfig(nz=8, ngf=4, ndf=4, batch_size=16, max_steps=2, device="cpu",
                      labels="latent", ema_decay=None)  # fmt: skip
    spec = make_spec(cfg, (1, 16, 16), 3, (), y)
    trainer = GANTrainer(cfg, spec, x, y, seed=0)
    seen: dict[str, list[torch.Tensor]] = {"g": [], "d": []}
    trainer.g_core.conditional.register_forward_pre_hook(
        lambda _m, args: seen["g"].append(args[1].clone())
    )
    trainer.d_core.register_forward_pre_hook(lambda _m, args: seen["d"].append(args[1].clone()))
    trainer.train_step()
    # D: real, fake (its step), fake (G's step) — all with the batch's real labels, which are
    # the classes G drew from z
    real_labels = seen["d"][0]
    assert len(seen["g"]) == 1 and torch.equal(seen["g"][0], real_labels)
    assert all(torch.equal(d, real_labels) for d in seen["d"])
    assert set(real_labels.tolist()) <= {0, 1, 2}
