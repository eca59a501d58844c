"""What a generator is, in data: enough to rebuild it or to describe its ONNX file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GeneratorSpec(BaseModel):
    """Architecture of a generator (and its discriminator): saved inside every checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["dcgan", "mlp"]
    nz: int = Field(ge=1)
    sample_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for toy points
    num_classes: int = Field(0, ge=0)  # 0: unconditional
    ngf: int = Field(64, ge=1)
    ndf: int = Field(64, ge=1)
    class_names: tuple[str, ...] = ()
    # MLP discriminator (Goodfellow et al. 2014): maxout pieces per unit (0: LeakyReLU units)
    # and dropout on its hidden units. Ignored by dcgan.
    maxout_pieces: int = Field(5, ge=0)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3
