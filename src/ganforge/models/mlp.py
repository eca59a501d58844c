"""Fully connected GAN of Goodfellow et al. 2014 (the `adversarial` repository's MNIST model).

G: z -> ReLU hidden layers -> Tanh for images in [-1, 1] (the paper used a sigmoid on [0, 1];
our store is scaled to [-1, 1]) or a linear output for toy points, which live on all of R^D.
D: maxout hidden layers (Goodfellow et al. 2013) with dropout, then one logit.
The paper's MNIST net (Section 5 describes it in words: ReLU/sigmoid G, maxout D with dropout;
the layer sizes are those of `mnist.yaml` in the authors' `goodfeli/adversarial` repository):
G 100 -> 1200 -> 1200 -> 784 (sigmoid), D 784 -> maxout 240x5 -> maxout 240x5 -> 1 (sigmoid),
dropout 0.5 on D's hidden units and 0.2 on its input, SGD with momentum 0.5 -> 0.7, batch 100.
`hidden=(1200, 1200)` and `hidden=(240, 240), maxout_pieces=5, dropout=0.5,
input_dropout=0.2` build those layer sizes (bench/quality.py's `digits_mlp` row); how they train
on digits is a measured question (README, "Goodfellow et al. 2014 on digits").
For 2-D toy data the mode-collapse benchmarks need neither maxout nor dropout:
`maxout_pieces=0, dropout=0` gives LeakyReLU units (the README's ring/grid configuration).
`pack=m` (PacGAN, Lin et al. 2018): D judges m samples at once, their flattened values joined
into one input of m times the width, so a G that drops modes is easier to tell apart.
Conditional variants (Mirza & Osindero 2014): G reads a learned label embedding next to z;
D either adds a projection term <embed(y), h> to its logit (Miyato & Koyama 2018) or reads
one-hot y joined to its input (the paper's concatenation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import Conditioning


def _widths(hidden: int | Sequence[int]) -> list[int]:
    widths = [hidden, hidden] if isinstance(hidden, int) else list(hidden)
    if not widths or min(widths) < 1:
        raise ValueError(f"hidden widths must be positive, got {hidden!r}")
    return widths


class Maxout(nn.Module):
    """A maxout layer: `pieces` affine maps per unit, the unit's output is their maximum."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x).view(x.shape[0], self.out_features, self.pieces)
        return h.amax(dim=2)


class MLPGenerator(nn.Module):
    """z [B, nz] (+ labels [B]) -> samples [B, *sample_shape]."""

    def __init__(
        self,
        nz: int = 100,
        sample_shape: Sequence[int] = (1, 28, 28),
        hidden: int | Sequence[int] = (1200, 1200),
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.nz, self.num_classes = nz, num_classes
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.embed = nn.Embedding(num_classes, nz) if num_classes else None
        width = nz * 2 if num_classes else nz
        layers: list[nn.Module] = []
        for w in _widths(hidden):
            layers += [nn.Linear(width, w), nn.ReLU(True)]
            width = w
        layers.append(nn.Linear(width, math.prod(self.sample_shape)))
        if len(self.sample_shape) == 3:  # images: the store's [-1, 1] range
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z).view(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    """samples [B, *sample_shape] (+ labels [B]) -> logits [B] ([B / pack] when packing).

    `maxout_pieces` >= 2 gives maxout units as in the paper; 0 gives LeakyReLU(0.2) units
    instead (1 piece would be a linear unit, and is refused). A conditional D reads the label
    by `conditioning`: "projection" (a term <embed(y), h> on the logit) or "concat" (one-hot
    y joined to the flattened input, as in Mirza & Osindero 2014).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 28, 28),
        hidden: int | Sequence[int] = (240, 240),
        num_classes: int = 0,
        maxout_pieces: int = 5,
        dropout: float = 0.5,
        input_dropout: float = 0.0,
        conditioning: Conditioning = "projection",
        pack: int = 1,
    ) -> None:
        super().__init__()
        if pack < 1 or (pack > 1 and num_classes):
            raise ValueError(
                f"pack={pack}: PacGAN packing needs pack >= 1 and an unconditional discriminator"
            )
        if maxout_pieces == 1 or maxout_pieces < 0:
            raise ValueError(
                f"maxout_pieces={maxout_pieces}: use 2 or more for maxout units, 0 for LeakyReLU"
            )
        self.num_classes, self.pack = num_classes, pack
        self.concat = bool(num_classes) and conditioning == "concat"
        width = math.prod(int(s) for s in sample_shape) + (num_classes if self.concat else 0)
        width *= pack
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        for w in _widths(hidden):
            if maxout_pieces:
                layers.append(Maxout(width, w, maxout_pieces))
            else:
                layers += [nn.Linear(width, w), nn.LeakyReLU(0.2, True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        projection = bool(num_classes) and not self.concat
        self.embed = nn.Embedding(num_classes, width) if projection else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this discriminator is conditional: pass labels")
        if self.concat and labels is not None:  # concat: conditional, so labels were checked
            one_hot = F.one_hot(labels, self.num_classes).to(x.dtype)
            x = torch.cat([x.flatten(1), one_hot], dim=1)
        if self.pack > 1:
            x = pack_flat(x.flatten(1), self.pack)
        h = self.features(x)
        logits = self.head(h).flatten()
        if self.embed is not None:
            logits = logits + (self.embed(labels) * h).sum(dim=1)
        return logits


def pack_flat(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN for flat inputs: x [B, D] -> [B/pack, pack·D], row i = samples i·pack … i·pack+pack-1
    joined end to end (the same grouping as `dcgan.pack_samples` uses for images)."""
    b, d = x.shape
    if b % pack:
        raise ValueError(f"a batch of {b} cannot be packed by {pack}: use a multiple of {pack}")
    return x.reshape(b // pack, pack * d)
