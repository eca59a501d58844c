"""How the lectures' callback reads the networks in training, without disturbing them.

- `fixed_batch`: the fixed latents and held-out real batch every measurement uses (`Batch`),
  drawn from the callback's own seeded generators, in whole PacGAN packs.
- `generate`, `d_on_points`, `eval_mode`: G's samples, D's verdict on points, and eval mode
  for a block with each module's train/eval mode put back after it.
- `density_panel` (1-D: Figure 1's curves), `surface_panel` (2-D: D over the plane, G's
  samples): the panel of one snapshot.
- `saturation_rows`: per sample, D(G(z)) and both G losses' gradients through D.

G here is the network in training (not its EMA copy): D plays against it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ganforge.data.scaling import to_model_range
from ganforge.lectures.figures import DensityPanel, SurfacePanel
from ganforge.lectures.theory import (
    OBJECTIVES,
    ToyDistribution,
    generator_logit_gradients,
    optimal_discriminator,
)
from ganforge.losses import generator_loss
from ganforge.models.latent_class import LatentClassGenerator

if TYPE_CHECKING:
    from ganforge.training.trainer import GANTrainer


class Batch:
    """The fixed inputs of every measurement: z, held-out reals, and the labels D / G read."""

    def __init__(
        self,
        z: torch.Tensor,
        real: torch.Tensor | None,
        real_labels: torch.Tensor | None,
        fake_labels: torch.Tensor | None,
        g_labels: torch.Tensor | None,
    ) -> None:
        self.z, self.real, self.real_labels = z, real, real_labels
        self.fake_labels, self.g_labels = fake_labels, g_labels


def fixed_batch(
    trainer: GANTrainer,
    toy: ToyDistribution | None,
    held_out: torch.Tensor | None,
    held_out_labels: torch.Tensor | None,
    *,
    samples: int | None,
    seed: int,
) -> Batch:
    """Fixed latents and a fixed held-out real batch (`samples` of each; default 1000 points,
    128 images), from generators seeded with `seed`; toy data without a held-out set draw the
    reals from the known distribution."""
    spec, device = trainer.spec, trainer.device
    n = samples or (128 if spec.is_image else 1000)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, spec.nz, generator=gen)
    real = real_labels = None
    if held_out is not None and len(held_out):
        idx = torch.randperm(len(held_out), generator=gen)[:n]
        real = held_out[idx]
        real = to_model_range(real) if real.dtype == torch.uint8 else real.float()
        if spec.labelled:
            if held_out_labels is None:
                raise ValueError(
                    "the lectures' snapshots: D reads labels (train.labels is not none): "
                    "pass the held-out batch's labels too"
                )
            real_labels = held_out_labels[idx].long()
    elif toy is not None:
        rng = np.random.default_rng([seed, 1])
        real = torch.from_numpy(toy.sample(n, rng))
    n = whole_packs(min(n, len(real)) if real is not None else n, trainer)
    z = z[:n]
    if real is not None:
        real = real[:n]
        real_labels = real_labels[:n] if real_labels is not None else None
    g_labels = fake_labels = None
    if isinstance(trainer.g_core, LatentClassGenerator):  # G draws its class from z
        fake_labels = trainer.g_core.classes(z.to(device)).cpu()
    elif spec.conditional:  # as in training: the fakes carry the real batch's labels
        if real_labels is not None:
            g_labels = fake_labels = real_labels[:n]
        else:
            weights = torch.tensor(spec.class_prior or [1.0] * spec.num_classes)
            g_labels = fake_labels = torch.multinomial(weights.double(), n, True, generator=gen)
    return Batch(
        z=z.to(device),
        real=real.to(device) if real is not None else None,
        real_labels=real_labels.to(device) if real_labels is not None else None,
        fake_labels=fake_labels.to(device) if fake_labels is not None else None,
        g_labels=g_labels.to(device) if g_labels is not None else None,
    )


def _head(t: torch.Tensor | None, k: int) -> torch.Tensor | None:
    return t[:k] if t is not None else None


def _pack(trainer: GANTrainer) -> int:
    return int(getattr(trainer.config, "pack", 1) or 1)


def whole_packs(n: int, trainer: GANTrainer) -> int:
    """n rounded down to whole PacGAN packs (D judges `pack` samples at a time)."""
    pack = _pack(trainer)
    return max(pack, n - n % pack)


def d_on_points(trainer: GANTrainer, x: torch.Tensor) -> torch.Tensor:
    """D(x) at each point of `x` [N, D]; a PacGAN D judges a pack of `pack` copies of x."""
    pack = _pack(trainer)
    if pack > 1:
        x = x.repeat_interleave(pack, dim=0)
    return torch.sigmoid(trainer.d_core(x, None).float().flatten())


def generate(trainer: GANTrainer, batch: Batch) -> torch.Tensor:
    """G's (the network in training's) samples for the batch's z."""
    return trainer.g_core(batch.z, batch.g_labels)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, BatchNorm's running statistics) for the block; then as before."""
    before = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, was in zip(modules, before, strict=True):
            m.train(was)


def saturation_rows(
    trainer: GANTrainer, batch: Batch, samples: int, step: int
) -> list[dict[str, float]]:
    """Per sample (the first `samples` of the batch): D(G(z)) and |∂ℓ_G/∂logit|,
    ‖∂ℓ_G/∂G(z)‖ for both G losses, through D; one row per pack on a PacGAN D."""
    k = whole_packs(min(samples, len(batch.z)), trainer)
    sub = Batch(batch.z[:k], None, None, _head(batch.fake_labels, k), _head(batch.g_labels, k))
    with eval_mode(trainer.g_core, trainer.d_core):
        with torch.no_grad():
            fake = generate(trainer, sub).float()
        fake.requires_grad_(True)
        logits = trainer.d_core(fake, sub.fake_labels).float().flatten()
        per_logit = generator_logit_gradients(logits)
        per_sample: dict[str, torch.Tensor] = {}
        for kind in OBJECTIVES:
            if logits.numel() != len(fake):  # PacGAN: one logit per pack, no per-sample x
                per_sample[kind] = torch.full((logits.numel(),), math.nan)
                continue
            loss = generator_loss(logits, kind) * logits.numel()
            (grad,) = torch.autograd.grad(loss, fake, retain_graph=True)
            per_sample[kind] = grad.detach().flatten(1).norm(dim=1).double().cpu()
    d_fake = torch.sigmoid(logits.detach().double()).cpu()
    rows = []
    for i in range(logits.numel()):
        row = {"step": float(step), "d_fake": float(d_fake[i])}
        for kind in OBJECTIVES:
            row[f"grad_logit_{kind}"] = float(per_logit[kind][i])
            row[f"grad_x_{kind}"] = float(per_sample[kind][i])
        rows.append(row)
    return rows


def density_panel(
    trainer: GANTrainer,
    toy: ToyDistribution,
    fake: torch.Tensor,
    step: int,
    scalars: Mapping[str, float],
    grid: int | None = None,
) -> DensityPanel:
    """Figure 1's curves on a grid (`grid` points, default 400) over the data and G's samples."""
    from scipy.stats import gaussian_kde

    x_fake = fake.cpu().double().flatten().numpy()
    mean, std = float(toy.centres[0, 0]), toy.std
    lo = min(mean - 4 * std, float(np.quantile(x_fake, 0.005)))
    hi = max(mean + 4 * std, float(np.quantile(x_fake, 0.995)))
    lo, hi = max(lo, mean - 40 * std), min(hi, mean + 40 * std)  # a diverged G: stay near
    pad = 0.05 * (hi - lo)
    x = np.linspace(lo - pad, hi + pad, grid or 400)
    if np.ptp(x_fake) == 0:  # a collapsed G: a point mass, the KDE needs some spread
        x_fake = x_fake + np.random.default_rng(0).normal(0, 1e-3 * std, x_fake.shape)
    p_g = gaussian_kde(x_fake)(x)
    p_data = toy.pdf(x[:, None])
    points = torch.as_tensor(x, dtype=torch.float32, device=trainer.device)[:, None]
    d = d_on_points(trainer, points).double().cpu().numpy()
    return DensityPanel(
        step=step, x=x, p_data=p_data, p_g=p_g, d=d,
        d_star=optimal_discriminator(p_data, p_g),
        value_v=scalars.get("value_v", math.nan),
        value_at_d_star=scalars.get("value_at_d_star", math.nan),
    )  # fmt: skip


def surface_panel(
    trainer: GANTrainer,
    toy: ToyDistribution,
    fake: torch.Tensor,
    step: int,
    scalars: Mapping[str, float],
    grid: int | None = None,
) -> SurfacePanel:
    """D on a square grid (`grid` per side, default 120) over the modes (and most of G's
    samples), and G's samples."""
    pts = fake.cpu().double().numpy()
    centres = toy.centres
    lo, hi = centres.min(axis=0) - 4 * toy.std, centres.max(axis=0) + 4 * toy.std
    span = float(np.max(hi - lo))
    lo, hi = lo - 0.25 * span, hi + 0.25 * span
    seen_lo, seen_hi = np.quantile(pts, 0.01, axis=0), np.quantile(pts, 0.99, axis=0)
    lo = np.maximum(np.minimum(lo, seen_lo), lo - span)
    hi = np.minimum(np.maximum(hi, seen_hi), hi + span)
    mid, half = (lo + hi) / 2, float(np.max(hi - lo)) / 2
    side = grid or 120
    xs = np.linspace(mid[0] - half, mid[0] + half, side)
    ys = np.linspace(mid[1] - half, mid[1] + half, side)
    gx, gy = np.meshgrid(xs, ys)
    plane = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float32)
    chunks = [d_on_points(trainer, c.to(trainer.device)).cpu() for c in plane.split(8192)]
    d = torch.cat(chunks).double().numpy().reshape(side, side)
    return SurfacePanel(
        step=step, xs=xs, ys=ys, d=d, fake=pts, centres=centres,
        modes_covered=int(scalars.get("modes_covered", 0)), num_modes=toy.num_modes,
        hq_share=float(scalars.get("hq_share", 0.0)),
    )  # fmt: skip
