"""The trained generator file (`models/generator.pt`): spec, weights, EMA weights, provenance.

Reading one is checked before use: a file that unpickles to something else (a list, a dict
with other keys, weights of another model) is one `CheckpointError` naming the file and what
was expected, never an AttributeError or torch's multi-line state-dict report.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from ganforge.config import plain_errors
from ganforge.io import torch_save
from ganforge.models.builders import build_generator
from ganforge.models.spec import GeneratorSpec


class CheckpointError(ValueError):
    """A `.pt` file that is not the checkpoint ganforge wrote; the message names it in one line."""


# key -> (the types its value may have, what it should be): what `save_generator` writes.
GENERATOR_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "spec": ((dict,), "the model's spec (a dict)"),
    "generator": ((dict,), "G's weights (a dict of tensors)"),
    "generator_ema": ((dict, type(None)), "the EMA weights (a dict of tensors, or None)"),
    "discriminator": ((dict, type(None)), "D's weights (a dict of tensors, or None)"),
    "extra": ((dict,), "the provenance (a dict)"),
}
# Files of earlier versions may lack these; the rest must be there.
_OPTIONAL = frozenset({"generator_ema", "discriminator", "extra"})


def describe(value: Any) -> str:
    """What an unpickled value is, in a few words: 'a list', 'the string 'abc'', 'a dict'."""
    if isinstance(value, str):
        return f"the string {value[:30]!r}" + ("..." if len(value) > 30 else "")
    if value is None:
        return "None"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def shape_problems(
    blob: Any, schema: Mapping[str, tuple[tuple[type, ...], str]], optional: frozenset[str]
) -> str | None:
    """What is wrong with `blob` against `schema` (key -> (types, description)), or None.

    Tells the first problem: not a dict, a missing key, or a key of the wrong type.
    """
    if not isinstance(blob, dict):
        keys = ", ".join(repr(k) for k in schema if k not in optional)
        return f"{describe(blob)}; expected a dict with {keys}"
    for key, (types, what) in schema.items():
        if key not in blob:
            if key in optional:
                continue
            return f"a dict without {key!r}; expected {what} there"
        if not isinstance(blob[key], types) or isinstance(blob[key], bool) and bool not in types:
            return f"{key!r} is {describe(blob[key])}; expected {what}"
    return None


def weight_problems(module: nn.Module, state: Any) -> str | None:
    """Why `state` cannot load into `module` (keys, tensor types, shapes), or None.

    Checked before `load_state_dict`, which copies what fits before it raises, so that a
    refused file leaves the module as it was.
    """
    if not isinstance(state, dict):
        return f"{describe(state)}, not a dict of tensors"
    wanted = module.state_dict()
    missing = [k for k in wanted if k not in state]
    unexpected = [k for k in state if k not in wanted]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {str(unexpected[0])!r})")
        return "weights of another model: " + ", ".join(parts)
    for key, ref in wanted.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            return f"{key!r} is {describe(value)}, not a tensor"
        if value.shape != ref.shape:
            return f"{key!r} has shape {list(value.shape)}, the model's is {list(ref.shape)}"
    return None


class UndecodableFile(CheckpointError):
    """The bytes of a `.pt` file do not unpickle (`.detail`: torch's error, in a few words)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path} does not unpickle as a torch checkpoint ({detail})")
        self.path, self.detail = path, detail


def unpickle(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, its two ways to fail told apart.

    The file that cannot be opened or read (permissions, a disk error) raises its OSError;
    content that does not unpickle (truncated, foreign, a pickle of code) raises
    `UndecodableFile`, whatever torch raised for it (an OSError, too, for a cut zip).
    """
    with path.open("rb") as fh:
        try:
            return torch.load(fh, map_location="cpu", weights_only=True)
        except OSError as err:
            if err.errno == errno.EIO:
                raise
            detail = f"{type(err).__name__}: {' '.join(str(err).split())[:100]}"
        except Exception as err:  # torch's unpickling and zip errors: a damaged or foreign file
            detail = f"{type(err).__name__}: {' '.join(str(err).split())[:100]}"
    raise UndecodableFile(path, detail)


def _read(file: Path) -> dict[str, Any]:
    """The checked content of a generator file (`CheckpointError` naming it otherwise)."""
    try:
        blob = unpickle(file)
    except UndecodableFile as err:
        raise CheckpointError(
            f"{file} is not a readable ganforge generator ({err.detail})"
        ) from None
    problem = shape_problems(blob, GENERATOR_KEYS, _OPTIONAL)
    if problem is not None:
        raise CheckpointError(f"{file} is not a ganforge generator file ({problem})")
    return blob


def _spec(file: Path, blob: dict[str, Any]) -> GeneratorSpec:
    try:
        return GeneratorSpec.model_validate(blob["spec"])
    except ValidationError as err:
        raise CheckpointError(
            f"{file} holds a spec ganforge cannot build: {plain_errors(err)}"
        ) from None


def _load_weights(file: Path, module: nn.Module, state: Any, key: str) -> None:
    problem = weight_problems(module, state)
    if problem is not None:
        raise CheckpointError(f"{file}: {key!r} does not fit the model of its spec: {problem}")
    module.load_state_dict(state)


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
    gains `weights: "ema" | "raw"` saying which were loaded. A file that is not a ganforge
    generator raises `CheckpointError` (a ValueError) naming it and what was expected.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no generator checkpoint there (run `dvc repro train`)")
    blob = _read(file)
    spec = _spec(file, blob)
    generator = build_generator(spec)
    key = "generator_ema" if use_ema and blob.get("generator_ema") else "generator"
    _load_weights(file, generator, blob[key], key)
    extra = dict(blob.get("extra") or {})
    extra["weights"] = "ema" if key == "generator_ema" else "raw"
    return generator.to(device).eval(), spec, extra


def load_discriminator(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> nn.Module | None:
    """The discriminator saved beside a generator, in eval mode (None when it was not saved).

    Raises `CheckpointError` like `load_generator` for a file that is not a ganforge generator.
    """
    from ganforge.models.builders import build_discriminator

    file = Path(path)
    blob = _read(file)
    if not blob.get("discriminator"):
        return None
    discriminator = build_discriminator(_spec(file, blob))
    _load_weights(file, discriminator, blob["discriminator"], "discriminator")
    return discriminator.to(device).eval()
