"""Weight initialisation of Radford et al. 2015: every weight drawn from N(0, 0.02)."""

from __future__ import annotations

from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """Conv and linear weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases zero."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        bias = getattr(module, "bias", None)
        if bias is not None:
            nn.init.zeros_(bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
