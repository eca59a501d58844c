"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for D's inputs.

With little data (digits: 1 257 training images) D memorises the real set within a few hundred
steps and its verdicts stop teaching G. DiffAugment shows D only augmented images -- real and
fake alike, in D's step *and* in G's step -- so that D cannot memorise pixels and G is never
pushed to produce the augmentations themselves (they act on both distributions identically).
Every transform is built from differentiable tensor ops, so G's gradient flows through it.

The transforms follow the paper's reference code:

- `translation`: shift each image by an integer in [-H/8, H/8] × [-W/8, W/8] pixels, the
  uncovered border filled with zeros;
- `cutout`: zero one square of half the image's side at a random position (clipped at the
  border);
- `color`: random brightness (±0.5), saturation (×[0, 2]) and contrast (×[0.5, 1.5]) per image.

Random parameters are drawn from torch's global generator on the tensors' device: the trainer
seeds that stream and saves it in every checkpoint, so a resumed run draws the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def translation(x: torch.Tensor, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift every image of x [B, C, H, W] by its own random integer offset, zero-filled."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    # Index into a copy padded by one zero pixel on each side: out-of-range positions clamp
    # onto that zero border (the reference code's trick; one gather, differentiable).
    gy = (ys + dy + 1).clamp(0, h + 1).expand(b, h, w)
    gx = (xs + dx + 1).clamp(0, w + 1).expand(b, h, w)
    padded = F.pad(x, [1, 1, 1, 1])
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return padded.permute(0, 2, 3, 1)[batch, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero one random square of side ratio × (H, W) in every image of x [B, C, H, W]."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast per image (the reference's colour family)."""
    b = x.shape[0]
    shape = (b, 1, 1, 1)
    x = x + (torch.rand(shape, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(shape, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(shape, device=x.device, dtype=x.dtype) + 0.5) + mean


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}
# The reference applies colour first, then translation, then cutout; keep that order
# whatever order the policy is written in.
ORDER = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    """x [B, C, H, W] through the transforms named in `policy` (empty: x itself, untouched)."""
    unknown = set(policy) - set(TRANSFORMS)
    if unknown:
        raise ValueError(
            f"unknown DiffAugment transform(s) {sorted(unknown)}: use {', '.join(ORDER)}"
        )
    if not policy:
        return x
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
    for name in ORDER:
        if name in policy:
            x = TRANSFORMS[name](x)
    # D's convolutions run in the layout the trainer chose (channels_last on CPU and CUDA).
    return x.contiguous(memory_format=fmt) if fmt else x
