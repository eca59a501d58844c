"""One training iteration: Algorithm 1 of Goodfellow et al. 2014, in named phases.

    for k steps:                                    # `discriminator_step`
        sample m noise vectors and m real samples
        update D by ascending  1/m sum [log D(x) + log(1 - D(G(z)))]
    sample m noise vectors                          # `generator_step`
    update G by descending its loss (minimax, non-saturating or hinge: `ganforge.losses`)

Phases, after stylegan2-ada's loss.py: Dmain and Dr1 (lazy R1) in D's update, Gmain and Gms
(mode seeking) in G's; D sees its inputs through DiffAugment and, in its own update, instance
noise. AMP is one context, an update one call (`networks`), statistics one call (`stats`).
"""

from __future__ import annotations

import torch

from ganforge.config import TrainConfig
from ganforge.losses import discriminator_loss, generator_loss, mode_seeking_loss
from ganforge.models import GeneratorSpec
from ganforge.models.latent_class import z_for_classes
from ganforge.training.amp import Precision
from ganforge.training.augment import diff_augment
from ganforge.training.networks import Networks
from ganforge.training.sampler import TensorSampler
from ganforge.training.stats import RunningStats, spread

Labels = torch.Tensor | None


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E_x ||grad_x D(x)||² over the batch (Mescheder et al. 2018), differentiable in D's weights.

    `real` must require grad and `real_logits` come from it; D's logit is differentiated (for
    the cross-entropy losses that is the usual choice: the penalty keeps D's logit smooth on
    the data).
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().square().flatten(1).sum(dim=1).mean()


def lr_scale(step: int, total_steps: int, decay: float) -> float:
    """The learning rates' factor at `step` (0-based) of `total_steps`: 1 until the last `decay`
    of the run, then falling linearly to 1/(its steps) on the last step (a function of the step
    alone, so a resumed run continues the schedule exactly)."""
    decay_steps = max(1, round(decay * total_steps))
    left = total_steps - step  # steps left, this one included
    return min(1.0, left / decay_steps)


class GANStep:
    """k updates of D, then one of G, on the networks of one run."""

    def __init__(
        self,
        config: TrainConfig,
        spec: GeneratorSpec,
        nets: Networks,
        precision: Precision,
        stats: RunningStats,
        device: torch.device,
    ) -> None:
        self.config, self.spec, self.nets = config, spec, nets
        self.precision, self.stats, self.device = precision, stats, device
        # The latent class's shares, on the device once: each step draws z₀ from them.
        self.class_prior = torch.tensor(spec.class_prior, dtype=torch.float64, device=device)

    def __call__(self, sampler: TensorSampler, step: int, total_steps: int) -> None:
        """Iteration `step` of `total_steps`: k discriminator updates, then one generator update."""
        c, k = self.config, self.config.d_steps
        r1 = c.r1_gamma > 0 and step % c.r1_every == 0  # lazy R1: every r1_every-th step
        sigma = c.instance_noise * max(0.0, 1.0 - step / total_steps)  # annealed linearly to 0
        if c.lr_decay > 0:
            scale = lr_scale(step, total_steps, c.lr_decay)
            for opt, lr in ((self.nets.opt_g, c.lr_g), (self.nets.opt_d, c.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr * scale
        for i in range(k):
            real, labels = sampler.next_batch()
            z, fake_labels = self.latents(real.shape[0], labels)
            fake = self.generate(z, fake_labels, for_generator_step=i == k - 1)
            self.discriminator_step(real, fake, labels, fake_labels, r1=r1, sigma=sigma)
        # G has not changed since it drew `fake`: they are samples of the current G, so G's
        # step reuses them (as the PyTorch example does) rather than paying another forward.
        self.generator_step(fake, fake_labels, z)
        if self.nets.ema is not None:
            self.nets.ema.update(self.nets.g_core, step)

    def discriminator_step(
        self, real: torch.Tensor, fake: torch.Tensor, labels: Labels, fake_labels: Labels = None,
        *, r1: bool = False, sigma: float = 0.0,
    ) -> None:  # fmt: skip
        """Descend `discriminator_loss`; `fake_labels` (by default `labels`) go with `fake`."""
        c, D = self.config, self.nets.D
        fake_labels = labels if fake_labels is None else fake_labels
        if not self.spec.labelled:
            labels = fake_labels = None
        if r1:  # Dr1 differentiates D w.r.t. the real images themselves, before augmentation
            real = real.detach().requires_grad_(True)
        # Dmain: real and fake through D separately (as in Radford et al.'s code), so that a
        # BatchNorm D normalises fakes with fake-batch statistics here and in G's step alike.
        with self.precision.autocast():
            real_logits = D(self.d_input(real, sigma), labels).float()
            fake_logits = D(self.d_input(fake.detach().to(real.dtype), sigma), fake_labels).float()
            loss = discriminator_loss(real_logits, fake_logits, c.loss, c.label_smoothing)
        total = loss
        if r1:  # Dr1: the penalty of a lazy step weighs r1_every steps' worth (StyleGAN2)
            total = loss + (0.5 * c.r1_gamma * c.r1_every) * r1_penalty(real_logits, real)
        self.stats.note(grad_norm_d=self.nets.update_d(total, norm=self.stats.want))
        d_real, d_fake = torch.sigmoid(real_logits.detach()), torch.sigmoid(fake_logits.detach())
        self.stats.accumulate(loss_d=loss.detach(), d_real=d_real.mean(), d_fake=d_fake.mean())
        if self.stats.want:
            self.stats.note(spread_real=spread(real), spread_fake=spread(fake))

    def generator_step(
        self, fake: torch.Tensor, labels: Labels, z: torch.Tensor | None = None
    ) -> None:
        """Descend G's loss on D's verdict about its samples (drawn from `z`); D is held fixed."""
        labels = labels if self.spec.labelled else None
        self.nets.d_core.requires_grad_(False)
        with self.precision.autocast():  # Gmain: D judges the (augmented) fakes, without noise
            logits = self.nets.d_on_fakes(self.d_input(fake), labels).float()
            loss = generator_loss(logits, self.config.loss)
        if self.config.mode_seeking > 0 and z is not None:  # Gms: paired fakes pushed apart
            h = fake.shape[0] // 2
            ms = mode_seeking_loss(fake[:h], fake[h : 2 * h], z[:h], z[h : 2 * h])
            self.stats.accumulate(mode_seeking=ms.detach())
            loss = loss + self.config.mode_seeking * ms
        self.stats.note(grad_norm_g=self.nets.update_g(loss, norm=self.stats.want))
        self.nets.d_core.requires_grad_(True)
        self.stats.accumulate(loss_g=loss.detach())

    def latents(self, n: int, labels: Labels) -> tuple[torch.Tensor, Labels]:
        """Fresh z [n, nz] for G and the labels its samples carry (for D, and a cGAN's G).

        The labels are the real batch's. With mode seeking the second half repeats the first
        half's, so that samples i and i + n/2 form a same-class pair. A latent-class G reads
        its class from z[:, 0]: that coordinate is drawn inside the interval of each label, so
        D judges every fake with the class G drew.
        """
        z = torch.randn(n, self.spec.nz, device=self.device)
        if labels is None or not self.spec.labelled:
            return z, None
        labels = labels[:n]
        if self.config.mode_seeking > 0:
            half = n // 2
            labels = torch.cat([labels[:half], labels[:half], labels[2 * half :]])
        if self.spec.latent_class:
            u = torch.rand(n, device=self.device)
            z[:, 0] = z_for_classes(labels, self.class_prior, u)
        return z, labels

    def generate(
        self, z: torch.Tensor, labels: Labels, for_generator_step: bool = False
    ) -> torch.Tensor:
        """G's samples for `z` (and a cGAN's labels); with the autograd graph for G's step."""
        labels = labels if self.spec.conditional else None
        G = self.nets.G if for_generator_step else self.nets.g_sample
        with torch.set_grad_enabled(for_generator_step), self.precision.autocast():
            return G(z, labels)

    def d_input(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        """What D is shown of x: DiffAugment'ed (images only), plus Gaussian instance noise of
        std `sigma` (Sønderby et al. 2016; D's update only)."""
        if self.spec.is_image:
            x = diff_augment(x, self.config.augment)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x
