"""DCGAN (Radford et al. 2015) at any power-of-two image size from 16 to 256.

G: a 4×4 projection of z by a transposed conv, then stride-2 transposed convs that double the
size and halve the width, BatchNorm + ReLU everywhere but the Tanh output.
Option of G beyond the paper: `upsample="resize"` doubles the size by bilinear interpolation
followed by a 3×3 conv (resize-convolution, Odena et al. 2016) in place of each stride-2
transposed conv, whose uneven kernel overlap leaves a checkerboard grain; `"transpose"` (the
default) is Radford et al.'s G.
D: the mirror image with stride-2 convs and LeakyReLU(0.2), BatchNorm everywhere but the
first layer, and a final 4×4 conv to one logit. No pooling, no fully connected hidden layers.

Options of D beyond the paper (all off by default, which is Radford et al.'s D):
- `norm="spectral"`: every conv (and the projection embedding) divided by its top singular
  value (Miyato et al. 2018) instead of BatchNorm; `norm="none"`: no normalisation.
- `mbstd_group=g`: minibatch standard deviation (Karras et al. 2018) -- before the head, one
  feature map holding the mean over features of the std within groups of g samples, so that D
  can see a batch that lacks variety.
- `pack=m`: PacGAN (Lin et al. 2018) -- D judges m samples at once, stacked along channels
  ([B, C, H, W] -> [B/m, m·C, H, W]) and returns B/m logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.config import Conditioning, DNorm, GUpsample
from ganforge.models.init import dcgan_init
from ganforge.models.spec import dcgan_levels

# Widths double per halving of resolution, up to 8× ngf/ndf as in the paper's 64×64 net;
# capped there so that 128 and 256 px nets stay trainable in memory.
MAX_WIDTH_MULT = 8


def _widths(base: int, levels: int) -> list[int]:
    """Channel widths from the 4×4 stage outward: [base*8, base*4, ..., base] (capped)."""
    return [base * min(2 ** (levels - 1 - i), MAX_WIDTH_MULT) for i in range(levels)]


def _up2(w_in: int, w_out: int, upsample: GUpsample) -> nn.Module:
    """A layer doubling the spatial size: a stride-2 4×4 transposed conv (Radford et al.) or
    bilinear ×2 then a 3×3 conv (resize-convolution, Odena et al. 2016)."""
    if upsample == "transpose":
        return nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False)
    if upsample == "resize":
        # align_corners=False: the pixel-centre convention, the one ONNX Resize exports as.
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(w_in, w_out, 3, 1, 1, bias=False),
        )
    raise ValueError(f"unknown upsample {upsample!r}: use transpose or resize")


class DCGANGenerator(nn.Module):
    """z [B, nz] (+ labels [B]) -> images [B, C, H, W] in [-1, 1]."""

    def __init__(
        self,
        nz: int = 100,
        channels: int = 3,
        image_size: int = 64,
        ngf: int = 64,
        num_classes: int = 0,
        upsample: GUpsample = "transpose",
    ) -> None:
        super().__init__()
        levels = dcgan_levels(image_size)
        widths = _widths(ngf, levels)
        self.nz, self.num_classes = nz, num_classes
        # cGAN (Mirza & Osindero 2014): the label enters G as a learned embedding next to z.
        self.embed = nn.Embedding(num_classes, nz) if num_classes else None
        in_dim = nz * 2 if num_classes else nz
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            layers += [_up2(w_in, w_out, upsample), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [_up2(widths[-1], channels, upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """images [B, C, H, W] (+ labels [B]) -> logits [B].

    A conditional D reads the label by `conditioning`: "projection" (Miyato & Koyama 2018:
    logit += <embed(y), pooled features>) or "concat" (Mirza & Osindero 2014: y joins D's
    input, here as one-hot planes next to the image channels).
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 64,
        ndf: int = 64,
        num_classes: int = 0,
        conditioning: Conditioning = "projection",
        norm: DNorm = "batch",
        mbstd_group: int = 0,
        pack: int = 1,
    ) -> None:
        super().__init__()
        if pack > 1 and num_classes:
            raise ValueError("PacGAN packing (pack > 1) needs an unconditional discriminator")
        levels = dcgan_levels(image_size)
        widths = _widths(ndf, levels)[::-1]  # [ndf, 2ndf, ..., 8ndf]
        self.num_classes, self.mbstd_group, self.pack = num_classes, mbstd_group, pack
        self.concat = bool(num_classes) and conditioning == "concat"
        in_channels = (channels + num_classes if self.concat else channels) * pack
        # Without BatchNorm the convs need their bias back (BatchNorm's shift stood in for it).
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 4, 2, 1, bias=bias),
            nn.LeakyReLU(0.2, True),
        ]
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            layers.append(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=bias))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, True))
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1] + (1 if mbstd_group else 0), 1, 4, 1, 0, bias=False)
        projection = bool(num_classes) and not self.concat
        self.embed = nn.Embedding(num_classes, widths[-1]) if projection else None
        self.apply(dcgan_init)
        if norm == "spectral":
            for module in self.modules():
                if isinstance(module, nn.Conv2d | nn.Embedding):
                    spectral_norm(module)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this discriminator is conditional: pass labels")
        if self.concat and labels is not None:  # concat: conditional, so labels were checked
            x = concat_label_planes(x, labels, self.num_classes)
        if self.pack > 1:
            x = pack_samples(x, self.pack)
        h = self.features(x)
        logits = self.head(minibatch_stddev(h, self.mbstd_group) if self.mbstd_group else h)
        logits = logits.flatten()
        if self.embed is not None:
            logits = logits + (self.embed(labels) * h.sum(dim=(2, 3))).sum(dim=1)
        return logits


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN: x [B, C, H, W] -> [B/pack, pack·C, H, W], samples i·pack … i·pack+pack-1 stacked."""
    b, c, h, w = x.shape
    if b % pack:
        raise ValueError(f"a batch of {b} cannot be packed by {pack}: use a multiple of {pack}")
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
    packed = x.reshape(b // pack, pack * c, h, w)
    return packed.contiguous(memory_format=fmt) if fmt else packed


def minibatch_stddev(h: torch.Tensor, group: int) -> torch.Tensor:
    """h [B, C, H, W] with one more channel: the std over each group of `group` samples
    (the whole batch when smaller), averaged over features and positions (Karras et al. 2018).

    Samples are grouped by stride as in the reference (sample i joins group i mod B/group), so
    that the feature map is the same for every member of a group.
    """
    b, c, height, width = h.shape
    g = min(group, b)
    if b % g:  # a last, smaller batch: fall back to the whole batch as one group
        g = b
    y = h.float().reshape(g, b // g, c, height, width)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # [B/g, C, H, W]
    stat = std.mean(dim=(1, 2, 3))  # [B/g]
    planes = stat.repeat(g).view(b, 1, 1, 1).expand(b, 1, height, width).to(h.dtype)
    return torch.cat([h, planes], dim=1)


def concat_label_planes(x: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """x [B, C, H, W] with one-hot planes of `labels` appended: [B, C + num_classes, H, W]."""
    planes = F.one_hot(labels, num_classes).to(x.dtype)[:, :, None, None]
    planes = planes.expand(-1, -1, *x.shape[2:])
    # Keep the input's layout (channels_last stays channels_last for the first conv).
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
    joined = torch.cat([x, planes], dim=1)
    return joined.contiguous(memory_format=fmt) if fmt else joined
