"""Generator -> one self-contained ONNX file with a dynamic batch axis and its metadata."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from ganforge.export.rewrite import Rewrite, rewrite_for_onnx
from ganforge.inference.metadata import LABEL_INPUT, Z_INPUT, ModelMetadata
from ganforge.io import atomic_path
from ganforge.models.spec import GeneratorSpec

log = logging.getLogger(__name__)

# The example batch for tracing: 2, not 1, so that the exporter cannot specialise on it.
_EXAMPLE_BATCH = 2


# The dynamo exporter implements opset 18 and up; below that its version conversion fails on
# some graphs (opset 13-15 for DCGAN, measured with torch 2.14), so older opsets go through
# the TorchScript exporter, which targets them natively.
DYNAMO_MIN_OPSET = 18


class ExportError(RuntimeError):
    """The generator could not be exported, or the file failed `onnx.checker`."""


class _Unconditional(nn.Module):
    def __init__(self, generator: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.generator, self.dtype = generator, dtype

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z.to(self.dtype)).float()


class _Conditional(_Unconditional):
    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.generator(z.to(self.dtype), label).float()


def example_inputs(
    spec: GeneratorSpec, batch: int = _EXAMPLE_BATCH, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z [batch, nz], labels [batch] | None) drawn from `seed`, on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, spec.nz, generator=gen)
    labels = (
        torch.randint(0, spec.num_classes, (batch,), generator=gen) if spec.conditional else None
    )
    return z, labels


def to_onnx(
    generator: nn.Module,
    spec: GeneratorSpec,
    opset: int = 18,
    metadata: ModelMetadata | None = None,
    fp16: bool = False,
    rewrite: Rewrite = "projection",
) -> onnx.ModelProto:
    """Trace `generator` (in eval mode, on the CPU) into a checked in-memory ONNX model.

    Inputs `z: float32 [batch, nz]` (+ `label: int64 [batch]`), output `image: float32
    [batch, C, H, W]` (`sample: [batch, D]` for point generators). With `fp16` the weights
    and arithmetic are float16 but the inputs and output stay float32 (casts at both ends).
    `rewrite` picks the exact graph rewrites made first (`ganforge.export.rewrite`): the
    default "projection" exports a DCGAN generator's first layer as one Gemm, "subpixel" also
    turns its stride-2 transposed convs into Conv + DepthToSpace, "none" traces the module as
    it is. bench/onnx_latency.py measures all three.
    """
    meta = metadata or ModelMetadata(nz=spec.nz, sample_shape=tuple(spec.sample_shape))
    dtype = torch.float16 if fp16 else torch.float32
    # rewrite_for_onnx works on a copy: the caller's module keeps its device, dtype and mode.
    inner, _ = rewrite_for_onnx(generator, rewrite)
    inner = inner.to(device="cpu", dtype=dtype).eval()
    wrapper = (_Conditional if spec.conditional else _Unconditional)(inner, dtype).eval()
    model = _trace(wrapper, spec, opset, meta.output_name)
    got = {o.domain: o.version for o in model.opset_import}.get("", None)
    if got != opset:
        raise ExportError(f"asked for opset {opset} but the exporter wrote opset {got}")
    _stamp(model, meta)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"onnx.checker rejected the exported model: {err}") from err
    return model


def _trace(wrapper: nn.Module, spec: GeneratorSpec, opset: int, output: str) -> onnx.ModelProto:
    """The wrapped generator traced on `example_inputs` with a dynamic batch axis."""
    z, labels = example_inputs(spec)
    batch = torch.export.Dim("batch", min=1)
    args: tuple[torch.Tensor, ...] = (z,) if labels is None else (z, labels)
    names = [Z_INPUT] if labels is None else [Z_INPUT, LABEL_INPUT]
    shapes = {name: {0: batch} for name in names}
    # The exporter narrates every step on stdout and warns about axis renaming: keep the
    # stage's log readable, and show the narration only when the export fails.
    narration = io.StringIO()
    try:
        with (
            torch.no_grad(),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(narration),
        ):
            warnings.simplefilter("ignore")
            if opset < DYNAMO_MIN_OPSET:
                return _legacy_export(wrapper, args, names, output, opset)
            program = torch.onnx.export(
                wrapper,
                args,
                input_names=names,
                output_names=[output],
                opset_version=opset,
                dynamic_shapes=shapes,
                external_data=False,
                dynamo=True,
                optimize=True,
            )
            assert program is not None  # the dynamo exporter returns its ONNXProgram
            return program.model_proto
    except Exception as err:
        log.debug("torch.onnx narration:\n%s", narration.getvalue())
        raise ExportError(f"torch.onnx.export failed for {spec.arch}: {err}") from err


def _stamp(model: onnx.ModelProto, meta: ModelMetadata) -> None:
    """`meta` as the model's metadata_props (replacing the exporter's) and its doc string."""
    props = meta.to_props()
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = f"ganforge {meta.arch} generator ({meta.weights} weights)"


def _legacy_export(
    wrapper: nn.Module,
    args: tuple[torch.Tensor, ...],
    names: list[str],
    output: str,
    opset: int,
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(
        wrapper,
        args,
        # torch declares a path, but the TorchScript exporter writes to a BytesIO as well
        # (onnx_proto_utils._export_file takes `io.BytesIO | str`)
        buffer,  # type: ignore[arg-type]
        input_names=names,
        output_names=[output],
        opset_version=opset,
        dynamic_axes={name: {0: "batch"} for name in [*names, output]},
        dynamo=False,
        do_constant_folding=True,
    )
    return onnx.load_model_from_string(buffer.getvalue())


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write `model` as one self-contained file (weights inside, no `.onnx.data`), atomically."""
    target = Path(path)
    if model.ByteSize() >= 2**31:
        raise ExportError(f"{target}: model is over 2 GB, too large for one ONNX file")
    with atomic_path(target) as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=False)
    return target


def export_generator(
    generator: nn.Module,
    spec: GeneratorSpec,
    path: str | os.PathLike[str],
    opset: int = 18,
    metadata: ModelMetadata | None = None,
    fp16: bool = False,
    rewrite: Rewrite = "projection",
) -> Path:
    """Export `generator` to `path` (see `to_onnx`) and check the written file; returns path."""
    model = to_onnx(generator, spec, opset=opset, metadata=metadata, fp16=fp16, rewrite=rewrite)
    target = save_onnx(model, path)
    onnx.checker.check_model(str(target), full_check=True)
    # debug: callers that write through a temp file report the final path themselves
    log.debug("exported %s generator to %s (opset %d%s)", spec.arch, target, opset,
              ", fp16" if fp16 else "")  # fmt: skip
    return target
