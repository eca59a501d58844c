"""Run exported generators with onnxruntime: no torch needed, here or in what it imports.

from ganforge.inference import Generator, save_grid, save_image
gen = Generator.load("models/generator.onnx")          # provider="auto": CUDA if it works
save_grid(gen.sample(64, seed=0), "samples.png")
save_image(gen.class_arithmetic(7, 1, 3).grid(), "arithmetic.png")  # models with classes
"""

from __future__ import annotations

from ganforge.inference.arithmetic import ClassArithmetic
from ganforge.inference.checks import GeneratorInputError
from ganforge.inference.generator import Generator
from ganforge.inference.grid import arithmetic_grid, make_grid, save_grid, save_image, to_uint8
from ganforge.inference.latent import interpolate_latents, latent_arithmetic, lerp, slerp
from ganforge.inference.metadata import ModelMetadata
from ganforge.inference.session import (
    PROVIDERS,
    ModelFileError,
    ProviderError,
    best_providers,
    create_session,
)

__all__ = [
    "PROVIDERS",
    "ClassArithmetic",
    "Generator",
    "GeneratorInputError",
    "ModelFileError",
    "ModelMetadata",
    "ProviderError",
    "arithmetic_grid",
    "best_providers",
    "create_session",
    "interpolate_latents",
    "latent_arithmetic",
    "lerp",
    "make_grid",
    "save_grid",
    "save_image",
    "slerp",
    "to_uint8",
]
