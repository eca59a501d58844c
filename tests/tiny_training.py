"""The smallest training set-up the loop tests share: a config and a batch of fake images."""

from __future__ import annotations

import torch

from ganforge.config import TrainConfig


def tiny_config(**overrides) -> TrainConfig:
    """A DCGAN of width 4 on 16×16 images, 6 steps of 16, checkpoints and logs every 2 steps."""
    options = dict(
        nz=8, ngf=4, ndf=4, batch_size=16, max_steps=6, device="cpu", log_every=2,
        checkpoint_every=2, num_sample_images=8, ema_decay=0.9,
    )  # fmt: skip
    return TrainConfig(**(options | overrides))


def tiny_images(n: int = 160) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 1×16×16 noise 'images' (seed 0) and labels cycling over 4 classes."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=gen)
    return x, torch.arange(n) % 4
