"""Generators and discriminators from the literature, built from a `GeneratorSpec`."""

from __future__ import annotations

from ganforge.models.builders import build_discriminator, build_generator
from ganforge.models.checkpoint import load_discriminator, load_generator, save_generator
from ganforge.models.spec import GeneratorSpec

__all__ = [
    "GeneratorSpec",
    "build_discriminator",
    "build_generator",
    "load_discriminator",
    "load_generator",
    "save_generator",
]
