"""Options that several commands take, with their help text: one definition each."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_MODEL = Path("models/generator.onnx")


class ProviderChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class MethodChoice(StrEnum):
    linear = "linear"
    slerp = "slerp"


ModelOpt = Annotated[
    Path,
    typer.Option(
        "--model",
        "-m",
        help="Exported generator to load: an .onnx file, or a registered MLflow model of "
        "this repository's store (models:/ganforge-generator@champion, runs:/<id>/generator_onnx).",
    ),
]
ChampionOpt = Annotated[
    bool,
    typer.Option(
        "--champion",
        help="Load the registry's champion (models:/<mlflow.registered_model>@champion) "
        "instead of --model: what the workspace holds after `dvc exp run` may be a "
        "challenger.",
    ),
]
ProviderOpt = Annotated[
    ProviderChoice,
    typer.Option(help="onnxruntime provider: auto (CUDA only where it works), cpu or cuda."),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the latent vectors (same seed, same output).")]
LabelOpt = Annotated[
    int | None,
    typer.Option(
        help="Class to generate, for models with classes (conditional or latent-class). "
        "Default: a conditional model cycles through its classes, a latent-class model "
        "draws them from the latents."
    ),
]
TruncationOpt = Annotated[
    float,
    typer.Option(
        help="Truncation ψ in (0, 1]: latents scaled toward 0, fewer odd samples and less "
        "variety; 1 = none."
    ),
]
GridOutOpt = Annotated[Path, typer.Option("--out", "-o", help="PNG grid to write.")]
