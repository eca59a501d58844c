"""The smallest training set-up the loop tests share: a config, fake images and a kill."""

from __future__ import annotations

import torch

from ganforge.config import TrainConfig
from ganforge.training import Callback


def tiny_config(**overrides) -> TrainConfig:
    """A DCGAN of width 4 on 16×16 images, 6 steps of 16, checkpoints and logs every 2 steps."""
    options = dict(
        nz=8, ngf=4, ndf=4, batch_size=16, max_steps=6, device="cpu", log_every=2,
        checkpoint_every=2, num_sample_images=8, ema_decay=0.9,
    )  # fmt: skip
    return TrainConfig(**(options | overrides))


def one_d_config(**overrides) -> TrainConfig:
    """The paper's MLP G / maxout D in the minimax game on the 1-D Gaussian: 1500 steps of 128."""
    options = dict(
        model="mlp", loss="minimax", nz=4, ngf=32, ndf=32, maxout_pieces=5, dropout=0.2,
        lr_g=1e-3, lr_d=1e-3, batch_size=128, max_steps=1500, ema_decay=None, device="cpu",
        log_every=50,
    )  # fmt: skip
    return TrainConfig(**(options | overrides))


def tiny_images(n: int = 160) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 1×16×16 noise 'images' (seed 0) and labels cycling over 4 classes."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=gen)
    return x, torch.arange(n) % 4


class Kill(Callback):
    """Interrupts the run at step `at` as a kill would: no final checkpoint, no finished outs.

    It raises KeyboardInterrupt; the stages turn a SIGTERM into a subclass of it.
    """

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer) -> None:
        if trainer.step == self.at:
            raise KeyboardInterrupt
