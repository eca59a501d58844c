"""training/step.py: the trainer's iterations equal Algorithm 1 written out plainly, bit for bit.

The reference below is the PyTorch DCGAN example's loop with ganforge's phases added in the
open (latent class, R1, mode seeking, DiffAugment, instance noise, EMA, the learning-rate
decay); it shares only leaf pieces with the code under test (networks, losses, augmentations,
the data order), not the step, the loop, the statistics or the checkpoint code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_training import tiny_config, tiny_images

from ganforge.config import TrainConfig
from ganforge.losses import discriminator_loss, generator_loss, mode_seeking_loss
from ganforge.models import GeneratorSpec, build_discriminator, build_generator
from ganforge.models.latent_class import z_for_classes
from ganforge.training import GANTrainer, fit, make_spec
from ganforge.training.augment import diff_augment
from ganforge.training.ema import EMA
from ganforge.training.sampler import TensorSampler
from ganforge.training.step import lr_scale, r1_penalty

pytestmark = pytest.mark.usefixtures("one_thread")

EVERY_PHASE = dict(
    labels="latent", mode_seeking=1.0, r1_gamma=1.0, r1_every=2, instance_noise=0.1, d_steps=2,
    augment=["color", "translation", "cutout"], channels_last=False, amp="off", ngf=8, ndf=8,
    lr_decay=0.5,
)  # fmt: skip


def reference_run(config: TrainConfig, spec: GeneratorSpec, x, y, seed: int) -> dict:
    """`config.max_steps` iterations of Algorithm 1 with every phase spelled out."""
    c, steps, device = config, config.max_steps, torch.device("cpu")
    torch.manual_seed(seed)
    G, D = build_generator(spec), build_discriminator(spec)
    torch.manual_seed(seed)  # the noise stream of rank 0
    ema = EMA(G, c.ema_decay)
    opt_g = torch.optim.Adam(G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2), fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2), fused=True)
    sampler = TensorSampler(x, y, c.batch_size, seed, device)
    prior = torch.tensor(spec.class_prior, dtype=torch.float64)
    decay_steps = round(c.lr_decay * steps)
    for step in range(steps):
        sigma = c.instance_noise * max(0.0, 1.0 - step / steps)
        scale = min(1.0, (steps - step) / decay_steps)  # the last lr_decay of the run: down to 0
        for opt, lr in ((opt_g, c.lr_g), (opt_d, c.lr_d)):
            opt.param_groups[0]["lr"] = lr * scale
        r1 = step % c.r1_every == 0
        for i in range(c.d_steps):
            real, labels = sampler.next_batch()
            n, h = real.shape[0], real.shape[0] // 2
            z = torch.randn(n, spec.nz)
            fake_labels = torch.cat([labels[:h], labels[:h], labels[2 * h :]])  # same-class pairs
            z[:, 0] = z_for_classes(fake_labels, prior, torch.rand(n))  # the class G draws
            with torch.set_grad_enabled(i == c.d_steps - 1):
                fake = G(z, None)
            real = real.detach().requires_grad_(r1)
            real_in = diff_augment(real, c.augment)
            real_logits = D(real_in + sigma * torch.randn_like(real_in), labels)
            fake_in = diff_augment(fake.detach(), c.augment)
            fake_logits = D(fake_in + sigma * torch.randn_like(fake_in), fake_labels)
            loss_d = discriminator_loss(real_logits, fake_logits, c.loss, c.label_smoothing)
            if r1:
                loss_d = loss_d + (0.5 * c.r1_gamma * c.r1_every) * r1_penalty(real_logits, real)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        D.requires_grad_(False)
        loss_g = generator_loss(D(diff_augment(fake, c.augment), fake_labels), c.loss)
        ms = mode_seeking_loss(fake[:h], fake[h : 2 * h], z[:h], z[h : 2 * h])
        opt_g.zero_grad(set_to_none=True)
        (loss_g + c.mode_seeking * ms).backward()
        opt_g.step()
        D.requires_grad_(True)
        ema.update(G, step)
    return {
        "generator": G.state_dict(),
        "discriminator": D.state_dict(),
        "generator_ema": ema.module.state_dict(),
    }


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_fit_equals_algorithm_1_written_out_with_every_phase() -> None:
    x, y = tiny_images(96)
    config = tiny_config(max_steps=5, **EVERY_PHASE)
    spec = make_spec(config, x.shape[1:], 4, (), y)
    assert spec.latent_class and spec.labelled and not spec.conditional
    result = fit(config, x, y, spec=spec, seed=2)
    want = reference_run(config, spec, x, y, seed=2)
    assert_same(want["generator"], result.generator.state_dict())
    assert_same(want["discriminator"], result.discriminator.state_dict())
    assert result.ema is not None
    assert_same(want["generator_ema"], result.ema.state_dict())


def test_train_step_by_hand_equals_fit_and_a_resumed_fit(tmp_path: Path) -> None:
    """Three paths through the same run: `train_step` in a loop, `fit`, `fit` killed and resumed."""
    x, y = tiny_images(96)
    config = tiny_config(max_steps=6, checkpoint_every=4, **EVERY_PHASE)
    spec = make_spec(config, x.shape[1:], 4, (), y)
    by_hand = GANTrainer(config, spec, x, y, seed=1)
    while by_hand.step < config.max_steps:
        by_hand.train_step()
        by_hand.step += 1
    fit(config, x, y, spec=spec, seed=1, checkpoint_dir=tmp_path, stop_after=4)
    resumed = fit(config, x, y, spec=spec, seed=1, checkpoint_dir=tmp_path)
    straight = fit(config, x, y, spec=spec, seed=1)
    assert resumed.resumed_from == 4
    for result in (resumed, straight):
        assert_same(by_hand.g_core.state_dict(), result.generator.state_dict())
        assert_same(by_hand.d_core.state_dict(), result.discriminator.state_dict())
        assert by_hand.ema is not None and result.ema is not None
        assert_same(by_hand.ema.module.state_dict(), result.ema.state_dict())
    assert [r["step"] for r in resumed.history] == [2, 4, 6]
    assert [r["loss_d"] for r in resumed.history] == [r["loss_d"] for r in straight.history]


def test_lr_scale_falls_linearly_to_zero_over_the_last_fraction_of_the_run() -> None:
    assert [lr_scale(s, 10, 0.4) for s in range(10)] == [1.0] * 7 + [0.75, 0.5, 0.25]
    assert [lr_scale(s, 4, 1.0) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    # a decay shorter than one step changes nothing
    assert [lr_scale(s, 10, 0.01) for s in range(10)] == [1.0] * 10


def test_the_optimizers_end_the_run_at_the_decayed_rate() -> None:
    x, y = tiny_images(64)
    config = tiny_config(max_steps=4, lr_decay=0.5, lr_g=1e-3, lr_d=4e-3)
    result = GANTrainer(config, make_spec(config, x.shape[1:]), x, seed=0)
    result.fit()
    # the last step ran at half the rate: 1 of the 2 steps of the decay left
    assert result.nets.opt_g.param_groups[0]["lr"] == pytest.approx(0.5e-3)
    assert result.nets.opt_d.param_groups[0]["lr"] == pytest.approx(2e-3)
