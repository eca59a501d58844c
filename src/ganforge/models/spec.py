"""What a generator is, in data: enough to rebuild it or to describe its ONNX file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from ganforge.config import ArchOptions

# The networks ganforge builds (models/dcgan.py, models/mlp.py).
Arch = Literal["dcgan", "mlp"]


def resolve_arch(arch: Arch | Literal["auto"], sample_shape: Sequence[int]) -> Arch:
    """The architecture `arch` names on data of `sample_shape`: "auto" picks from the data.

    Images (C, H, W) get "dcgan" (Radford et al. 2015); points (D,) get "mlp" (Goodfellow et
    al. 2014), the only one of the two that reads a flat vector.
    """
    if arch != "auto":
        return arch
    return "dcgan" if len(tuple(sample_shape)) == 3 else "mlp"


def dcgan_levels(image_size: int) -> int:
    """Number of stride-2 stages of a DCGAN between 4×4 and `image_size` (16..256, 2^k)."""
    log2 = math.log2(image_size) if image_size > 0 else 0.5
    if image_size < 16 or image_size > 256 or not log2.is_integer():
        raise ValueError(
            f"DCGAN needs a power-of-two image size from 16 to 256, got {image_size}: "
            "set prepare.image_size to 16, 32, 64, 128 or 256"
        )
    return int(log2) - 2


class GeneratorSpec(ArchOptions):
    """Architecture of a generator (and its discriminator): saved inside every checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "auto" may be passed in and is resolved from sample_shape (see resolve_arch): a saved
    # spec always names the architecture that was built.
    arch: Arch
    sample_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for toy points
    num_classes: int = Field(0, ge=0)  # 0: unconditional
    class_names: tuple[str, ...] = ()
    # Latent class (train.labels: latent): G and D are built conditional on `num_classes`, but G
    # draws its class from z with these probabilities (the data's class shares), so it takes
    # z alone. Empty: the class, if any, is the caller's (a cGAN).
    class_prior: tuple[float, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _resolve_auto(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("arch") == "auto":
            data = {**data, "arch": resolve_arch("auto", data.get("sample_shape") or ())}
        return data

    @model_validator(mode="after")
    def _buildable(self) -> GeneratorSpec:
        # Refuse here what no network could be built for, before any run or file is made.
        if self.arch == "dcgan":
            if len(self.sample_shape) != 3:
                raise ValueError(
                    f"train.model = dcgan generates images but the data are points of shape "
                    f"{self.sample_shape}: set train.model: auto (or mlp) for toy data sets"
                )
            _, height, width = self.sample_shape
            if height != width:
                raise ValueError(f"DCGAN needs square images, got {height}×{width}")
            dcgan_levels(height)
        if self.class_prior:
            if len(self.class_prior) != self.num_classes or self.num_classes < 2:
                raise ValueError(
                    f"class_prior has {len(self.class_prior)} entries for "
                    f"{self.num_classes} classes: it needs one share per class (2 or more)"
                )
            if min(self.class_prior) <= 0 or abs(sum(self.class_prior) - 1.0) > 1e-6:
                raise ValueError("class_prior must be positive shares that sum to 1")
        return self

    @property
    def conditional(self) -> bool:
        """Whether G asks its caller for a label (a cGAN); a latent-class G does not."""
        return self.num_classes > 0 and not self.class_prior

    @property
    def latent_class(self) -> bool:
        """Whether G draws its class from z (and D still reads labels)."""
        return bool(self.class_prior)

    @property
    def labelled(self) -> bool:
        """Whether training needs the data's labels: D is conditional."""
        return self.num_classes > 0

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3
