"""What the validation monitor scores a batch of G's samples with, one measure per kind of data.

- images: FID of the domain classifier's features against a fixed subset of the *validation*
  split (`ValidationFID`; the test split is never used for selection);
- ring / grid of Gaussians: high-quality fraction × fraction of modes covered (`ModeQuality`):
  the FID of raw 2-D points cannot see a generator that smears its mass between the modes;
- 1-D Gaussian: Jensen-Shannon divergence to the known N(mean, std²) (`GaussianJSD`).

Each also returns the class (mode) histogram of the samples that look like data, which the
monitor's partial-collapse alarm reads (`starved_classes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ganforge.metrics.features import FeatureNet, extract_features
from ganforge.metrics.fid import frechet_distance, min_fid_samples
from ganforge.metrics.precision_recall import inside_manifold, knn_radii
from ganforge.metrics.toy import jensen_shannon_1d, mode_histogram

# A class (mode) is starved when it gets less than this fraction of its share of the data: the
# same quarter the ring/grid coverage rule uses (DESIGN.md), far below sampling noise at N ≥ 500.
STARVED_SHARE = 0.25


class SelectionMeasure:
    """Scores a batch of generated samples; `column` names it in the history and in MLflow."""

    column: str = "score_val"
    higher_is_better: bool = False

    def __call__(self, samples: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        """(score, histogram per class or mode of the samples that look like data, or None).

        Only samples that look like data count in the histogram: a classifier lumps an
        untrained G's blobs into one class with high confidence, which is no collapse.
        """
        raise NotImplementedError

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether `value` beats `best`; a tie goes to the newer (longer-trained) generator,
        so a run whose score stays flat (0 modes covered, say) keeps its last G."""
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value >= best if self.higher_is_better else value <= best


class ValidationFID(SelectionMeasure):
    """FID (domain classifier features) of uint8 samples against fixed validation images.

    Also, for the collapse alarm, the classifier's predicted-class histogram of the samples that
    lie in the k-NN manifold of the validation features (k = 3, the precision of Kynkäänniemi
    et al. 2019): samples that look like real digits.
    """

    column = "fid_val"
    higher_is_better = False

    def __init__(
        self,
        net: FeatureNet,
        val_images: torch.Tensor,
        max_real: int = 1000,
        seed: int = 0,
        batch_size: int = 500,
        device: torch.device | str = "cpu",
    ) -> None:
        need = min_fid_samples(net.feature_dim)
        if len(val_images) < need:
            raise ValueError(
                f"the validation split holds {len(val_images)} images; a FID of "
                f"{net.feature_dim}-d features needs at least {need}: raise prepare.val_fraction "
                "or set train.fid_every: 0"
            )
        if len(val_images) > max_real:  # a fixed subset: the same reference at every step
            gen = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(val_images), generator=gen)[:max_real].sort().values
            val_images = val_images[idx]
        self.net, self.batch_size, self.device = net.to(device).eval(), batch_size, device
        self.real = extract_features(self.net, val_images, batch_size, device).features
        self.radii = knn_radii(self.real, 3)
        self.num_classes = net.num_classes

    def __call__(self, samples: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        fake = extract_features(self.net, samples, self.batch_size, self.device)
        realistic = inside_manifold(fake.features, self.real, self.radii)
        predicted = fake.logits.argmax(1)[realistic]
        hist = torch.bincount(predicted, minlength=self.num_classes)
        return frechet_distance(self.real, fake.features), hist


class ModeQuality(SelectionMeasure):
    """Mixtures of Gaussians (ring, grid): high-quality fraction × fraction of modes covered.

    High quality: within `num_std`·σ of the nearest centre. Covered: a mode that holds at least a
    quarter of its expected share of the samples as high-quality samples. 1.0 is perfect; a
    generator that smears over the ring scores near 0, one that collapses onto 3 of 8 modes at
    most 3/8. The histogram counts the high-quality samples of each mode.
    """

    column = "mode_quality_val"
    higher_is_better = True

    def __init__(self, centres: Sequence[Sequence[float]], std: float, num_std: float = 3.0):
        self.centres = torch.as_tensor(centres, dtype=torch.float64)
        self.std, self.num_std = float(std), num_std

    def __call__(self, samples: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        per_mode, good = mode_histogram(samples, self.centres, self.std, self.num_std)
        expected = len(samples) / len(self.centres)
        covered = (per_mode.double() >= STARVED_SHARE * expected).double().mean().item()
        score = good.double().mean().item() * covered
        return score, per_mode.long()


class GaussianJSD(SelectionMeasure):
    """1-D Gaussian data: JSD(N(mean, std²) ‖ p_g) in nats (0 at the optimum)."""

    column = "jsd_val"
    higher_is_better = False

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = float(mean), float(std)

    def __call__(self, samples: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        return jensen_shannon_1d(samples, mean=self.mean, std=self.std, grid_size=1001), None


def starved_classes(
    hist: torch.Tensor, prior: torch.Tensor, min_share: float = STARVED_SHARE
) -> list[int]:
    """Classes (modes) whose share of `hist` is below `min_share` × their share in `prior`."""
    p_gen = hist.double() / max(1, int(hist.sum()))
    p_data = prior.double() / prior.sum()
    return [int(k) for k in torch.nonzero((p_data > 0) & (p_gen < min_share * p_data)).flatten()]
