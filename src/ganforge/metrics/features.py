"""The shared helper of every metric: feature nets, generated samples, batched feature extraction.

A *feature net* maps uint8 images [B, C, H, W] to `(features [B, F], logits [B, K])`: one
forward pass gives what FID, KID and precision/recall need (features) and what the Inception
Score and class coverage need (logits). Two backends:

- `classifier`: the domain classifier (`ganforge.classifier`), offline, any size and channels;
- `inception`: torchmetrics' InceptionV3 (the TF-FID port of torch-fidelity) with the weights
  loaded from a file, resized without antialiasing so that scores compare with the literature.

Generated samples are quantised to uint8 before their features are taken, exactly like the
stored real data, so that both sides see the same preprocessing. Real features are computed
once and reused by every metric.

torchmetrics adapters: `TorchmetricsFeature(net, "features" | "logits")` plugs a feature net into
`FrechetInceptionDistance`, `KernelInceptionDistance` or `InceptionScore` as their `feature`
module; `Precomputed(dim)` feeds them features computed beforehand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganforge.classifier import DomainClassifier
from ganforge.data.scaling import to_uint8
from ganforge.models import GeneratorSpec

log = logging.getLogger(__name__)

INCEPTION_FILES = (
    "pt_inception-2015-12-05-6726825d.pth",  # pytorch-fid's name
    "weights-inception-2015-12-05-6726825d.pth",  # torch-fidelity's name
)
INCEPTION_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
)


class FeatureNet(nn.Module):
    """uint8 images [B, C, H, W] -> (features [B, feature_dim], logits [B, num_classes])."""

    name: str = "features"
    feature_dim: int
    num_classes: int
    # Whether the logits are classes of images (ImageNet's, the data's): a rotation
    # classifier's are not, so no Inception Score is taken from them.
    judges_classes: bool = True

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class ClassifierFeatureNet(FeatureNet):
    """The domain classifier's penultimate activations and class logits."""

    name = "classifier"

    def __init__(self, classifier: DomainClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.feature_dim = classifier.feature_dim
        self.num_classes = classifier.num_classes
        self.judges_classes = classifier.task == "classes"

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier.features_and_logits(images)


def find_inception_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The InceptionV3 FID weights file: `path` when given, else the torch hub cache.

    Raises FileNotFoundError naming the file, where to put it and how to fetch it.
    """
    if path is not None:
        file = Path(path).expanduser()
        if file.is_file():
            return file
        candidates = [file]
    else:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        candidates = [hub / name for name in INCEPTION_FILES]
        for file in candidates:
            if file.is_file():
                return file
    raise FileNotFoundError(
        "InceptionV3 FID weights not found (looked for "
        + ", ".join(str(c) for c in candidates)
        + "). This machine cannot download them. On a machine with internet run\n"
        f"  curl -LO {INCEPTION_URLS[0]}\n"
        f"copy the file to {Path(torch.hub.get_dir()) / 'checkpoints' / INCEPTION_FILES[0]} "
        "(or anywhere, and set evaluate.inception_weights to its path), "
        "or use evaluate.backend: classifier."
    )


class InceptionFeatureNet(FeatureNet):
    """InceptionV3 pool features (2048) and unbiased logits (1008), as torchmetrics computes them.

    Built from torchmetrics' `NoTrainInceptionV3` with `feature_extractor_weights_path` and
    `antialias=False` (torch-fidelity / pytorch-fid resizing); grey images are repeated to RGB.
    Needs the `torch-fidelity` package.
    """

    name = "inception"
    feature_dim = 2048
    num_classes = 1008

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

        file = find_inception_weights(weights)
        if not _TORCH_FIDELITY_AVAILABLE:
            raise ModuleNotFoundError(
                "the inception backend needs the torch-fidelity package: pip install torch-fidelity"
            )
        self.weights_path = file
        self.inception = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(file),
            antialias=False,
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dtype != torch.uint8:
            raise TypeError("the inception backend takes uint8 images")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        feats, logits = self.inception._torch_fidelity_forward(images)
        return feats.reshape(len(images), -1), logits.reshape(len(images), -1)


class TorchmetricsFeature(nn.Module):
    """A feature net as the `feature` module of a torchmetrics image metric.

    `output="features"` for FrechetInceptionDistance / KernelInceptionDistance, `"logits"` for
    InceptionScore. `num_features` is set, so torchmetrics need not probe with a dummy batch.
    """

    def __init__(self, net: FeatureNet, output: str = "features") -> None:
        super().__init__()
        if output not in ("features", "logits"):
            raise ValueError(f"output must be 'features' or 'logits', got {output!r}")
        self.net, self.output = net, output
        self.num_features = net.feature_dim if output == "features" else net.num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats, logits = self.net(images)
        return feats if self.output == "features" else logits


class Precomputed(nn.Module):
    """Identity `feature` module: update a torchmetrics metric with features computed before."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@dataclass
class FeatureSet:
    """Features (and logits) of one set of samples, float32 on the CPU."""

    features: torch.Tensor
    logits: torch.Tensor

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @staticmethod
    def cat(parts: list[FeatureSet]) -> FeatureSet:
        return FeatureSet(
            torch.cat([p.features for p in parts]), torch.cat([p.logits for p in parts])
        )


@torch.inference_mode()
def extract_features(
    net: FeatureNet,
    images: torch.Tensor,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> FeatureSet:
    """Features and logits of uint8 images [N, C, H, W], batched."""
    net.eval()
    parts = []
    for i in range(0, len(images), batch_size):
        feats, logits = net(images[i : i + batch_size].to(device))
        parts.append(FeatureSet(feats.float().cpu(), logits.float().cpu()))
    if not parts:
        raise ValueError("no images to take features of")
    return FeatureSet.cat(parts)


def sample_labels(
    num: int, class_weights: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """`num` labels drawn from the class distribution `class_weights` (for a conditional G)."""
    probs = class_weights.double() / class_weights.sum()
    return torch.multinomial(probs, num, replacement=True, generator=generator)


@torch.inference_mode()
def iter_generated(
    generator: nn.Module,
    spec: GeneratorSpec,
    num: int,
    batch_size: int = 500,
    seed: int = 0,
    device: torch.device | str = "cpu",
    labels: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield `(samples, labels)` batches: uint8 images, or float32 points for toy data.

    The latent codes come from a CPU generator seeded with `seed`, so the samples are the same
    for a seed whatever the device and batch size. `labels` [num] are required for a conditional
    generator (see `sample_labels`).
    """
    if spec.conditional and labels is None:
        raise ValueError("this generator is conditional: pass the labels to generate")
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(num, spec.nz, generator=gen)
    generator.eval()
    for i in range(0, num, batch_size):
        z = z_all[i : i + batch_size].to(device)
        y = labels[i : i + batch_size] if spec.conditional and labels is not None else None
        out = generator(z, y.to(device) if y is not None else None).float().cpu()
        yield (to_uint8(out) if spec.is_image else out), y
