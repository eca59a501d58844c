"""The refusals every interface shares (library, CLI, server, MLflow pyfunc), one line each.

A bad request is a `GeneratorInputError`; a model file whose metadata and graph disagree is a
`ModelFileError`.
"""

from __future__ import annotations

import operator

import onnxruntime as ort

from ganforge.inference.metadata import ModelMetadata
from ganforge.inference.session import ModelFileError


class GeneratorInputError(ValueError):
    """A request the generator cannot serve: bad count, label, latent size..."""


# Each interface says how to leave the label out in its own terms (flag, field, input).
NO_CLASSES = "this generator has no classes (it was trained without labels)"


def check_label(value: object, num_classes: int) -> int:
    """One label as a Python int in 0..num_classes-1 (compared before any int64 cast)."""
    try:
        label = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise GeneratorInputError(f"label {str(value)[:40]!r} is not an integer") from None
    if not 0 <= label < num_classes:
        shown = str(label) if label.bit_length() < 128 else f"of {label.bit_length()} bits"
        raise GeneratorInputError(
            f"label {shown} is out of range: this generator has {num_classes} "
            f"classes (0..{num_classes - 1})"
        )
    return label


def check_count(num: int, what: str) -> None:
    """A count (samples, latents, per class) must be a positive integer."""
    if int(num) != num or num < 1:
        raise GeneratorInputError(f"{what} = {num}: must be a positive integer")


def check_graph_shapes(session: ort.InferenceSession, meta: ModelMetadata) -> None:
    """The graph's fixed dimensions must agree with the metadata a caller relies on."""
    z_shape = list(session.get_inputs()[0].shape or [])
    out_shape = list(session.get_outputs()[0].shape or [])
    if not out_shape:  # rank unknown: run() checks what comes out
        return
    problems = []
    if len(z_shape) == 2 and isinstance(z_shape[1], int) and z_shape[1] != meta.nz:
        problems.append(f"input z is [batch, {z_shape[1]}] but nz = {meta.nz}")
    fixed = out_shape[1:]
    if len(fixed) != len(meta.sample_shape) or any(
        isinstance(d, int) and d != m for d, m in zip(fixed, meta.sample_shape, strict=False)
    ):
        problems.append(f"output is {out_shape} but sample_shape = {list(meta.sample_shape)}")
    if problems:
        raise ModelFileError(
            "its ganforge metadata does not match its graph ("
            + "; ".join(problems)
            + "): export the generator again (`dvc repro export`)"
        )
