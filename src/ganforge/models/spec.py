"""What a generator is, in data: enough to rebuild it or to describe its ONNX file."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# How a conditional discriminator reads the label: a projection term on its logit
# (Miyato & Koyama 2018) or one-hot labels joined to its input (Mirza & Osindero 2014).
Conditioning = Literal["projection", "concat"]
# How a dcgan discriminator normalises its hidden layers.
DNorm = Literal["batch", "spectral", "none"]
# How a dcgan generator doubles its size: stride-2 transposed convs (Radford et al.) or
# bilinear resize + 3×3 conv (Odena et al. 2016).
GUpsample = Literal["transpose", "resize"]


def resolve_arch(arch: str, sample_shape: tuple[int, ...] | list[int]) -> str:
    """The architecture `arch` names on data of `sample_shape`: "auto" picks from the data.

    Images (C, H, W) get "dcgan" (Radford et al. 2015); points (D,) get "mlp" (Goodfellow et
    al. 2014), the only one of the two that reads a flat vector. Other names pass through.
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


class GeneratorSpec(BaseModel):
    """Architecture of a generator (and its discriminator): saved inside every checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "auto" may be passed in and is resolved from sample_shape (see resolve_arch): a saved
    # spec always names the architecture that was built.
    arch: Literal["dcgan", "mlp"]
    nz: int = Field(ge=1)
    sample_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for toy points
    num_classes: int = Field(0, ge=0)  # 0: unconditional
    ngf: int = Field(64, ge=1)
    ndf: int = Field(64, ge=1)
    class_names: tuple[str, ...] = ()
    # MLP G and D: hidden layers each, of widths ngf / ndf. Ignored by dcgan.
    mlp_layers: int = Field(2, ge=1)
    # MLP discriminator (Goodfellow et al. 2014): maxout pieces per unit (0: LeakyReLU units)
    # and dropout on its hidden units and on its input. Ignored by dcgan.
    maxout_pieces: int = Field(5, ge=0)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    input_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # How a conditional D reads the label (ignored when unconditional).
    d_conditioning: Conditioning = "projection"
    # dcgan D only: normalisation (batch: Radford et al.; spectral: Miyato et al. 2018; none),
    # minibatch-stddev group size (0: off) and PacGAN packing (1: off).
    d_norm: DNorm = "batch"
    mbstd_group: int = Field(0, ge=0)
    pack: int = Field(1, ge=1)
    # dcgan G only: how each stage doubles the size (see GUpsample).
    g_upsample: GUpsample = "transpose"
    # Latent class (train.latent_class): G and D are built conditional on `num_classes`, but G
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
