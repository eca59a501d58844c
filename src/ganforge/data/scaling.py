"""Conversions between stored uint8 images and the generator's value range [-1, 1]."""

from __future__ import annotations

import torch


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (the range of a Tanh generator)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], clamping what lies outside."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
