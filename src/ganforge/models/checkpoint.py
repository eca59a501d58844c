"""The trained generator file (`models/generator.pt`): spec, weights, EMA weights, provenance."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.io import torch_save
from ganforge.models.builders import build_generator
from ganforge.models.spec import GeneratorSpec


def save_generator(
    path: str | os.PathLike[str],
    spec: GeneratorSpec,
    generator: nn.Module,
    ema: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the generator (and its EMA copy) with its spec, atomically.

    The discriminator is kept too (evaluation of toy runs measures V(D, G) with it).
    `extra` carries provenance such as the MLflow run id, dataset hash and training config.
    """
    torch_save(
        {
            "spec": spec.model_dump(mode="json"),
            "generator": _plain_state(generator),
            "generator_ema": _plain_state(ema) if ema is not None else None,
            "discriminator": _plain_state(discriminator) if discriminator is not None else None,
            "extra": extra or {},
        },
        path,
    )


def _plain_state(module: nn.Module) -> dict[str, torch.Tensor]:
    # Unwrap DDP / torch.compile wrappers so the file loads into a bare module.
    inner = getattr(module, "module", module)
    inner = getattr(inner, "_orig_mod", inner)
    return {k: v.detach().cpu() for k, v in inner.state_dict().items()}


def load_generator(
    path: str | os.PathLike[str],
    use_ema: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, GeneratorSpec, dict[str, Any]]:
    """Rebuild a saved generator in eval mode: (module, spec, extra).

    The EMA weights are used when `use_ema` and the file has them. The returned extra dict
    gains `weights: "ema" | "raw"` saying which were loaded.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no generator checkpoint there (run `dvc repro train`)")
    blob = torch.load(file, map_location="cpu", weights_only=True)
    spec = GeneratorSpec.model_validate(blob["spec"])
    generator = build_generator(spec)
    state = blob["generator_ema"] if use_ema and blob.get("generator_ema") else blob["generator"]
    generator.load_state_dict(state)
    extra = dict(blob.get("extra") or {})
    extra["weights"] = "ema" if state is blob.get("generator_ema") else "raw"
    return generator.to(device).eval(), spec, extra


def load_discriminator(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> nn.Module | None:
    """The discriminator saved beside a generator, in eval mode (None when it was not saved)."""
    from ganforge.models.builders import build_discriminator

    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not blob.get("discriminator"):
        return None
    discriminator = build_discriminator(GeneratorSpec.model_validate(blob["spec"]))
    discriminator.load_state_dict(blob["discriminator"])
    return discriminator.to(device).eval()
