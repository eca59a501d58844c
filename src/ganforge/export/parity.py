"""Does the ONNX file compute what the PyTorch generator computes? Max |diff| per batch size."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge.export.export import example_inputs
from ganforge.inference.session import create_session
from ganforge.models.spec import GeneratorSpec


class ParityError(RuntimeError):
    """onnxruntime and PyTorch disagree beyond the tolerance."""


@dataclass
class ParityReport:
    """max |onnxruntime − torch| per batch size, against `atol`."""

    atol: float
    provider: str
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst <= self.atol

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worst": self.worst, "passed": self.passed}

    def raise_if_failed(self, what: str = "ONNX model") -> None:
        if not self.passed:
            raise ParityError(
                f"{what}: max |onnxruntime - torch| = {self.worst:.3g} exceeds atol "
                f"{self.atol:g} (per batch: {self.max_abs_diff})"
            )


@torch.no_grad()
def check_parity(
    generator: nn.Module,
    spec: GeneratorSpec,
    onnx_path: str | os.PathLike[str],
    batches: list[int] | tuple[int, ...] = (1, 7, 64),
    atol: float = 1e-4,
    provider: str = "cpu",
    seed: int = 0,
) -> ParityReport:
    """Run both on the same latents (and labels) at each batch size; compare in float32.

    The PyTorch side runs in float32 on the CPU in eval mode, the reference for both the
    fp32 and the fp16 file (give the fp16 file a looser `atol`).
    """
    session = create_session(onnx_path, provider)  # type: ignore[arg-type]
    reference = generator.to("cpu").float().eval()
    output = session.get_outputs()[0].name
    report = ParityReport(atol=atol, provider=session.get_providers()[0])
    for batch in batches:
        z, labels = example_inputs(spec, batch, seed=seed + batch)
        expected = reference(z, labels).numpy()
        feed = {"z": z.numpy()}
        if labels is not None:
            feed["label"] = labels.numpy()
        got = session.run([output], feed)[0]
        if got.shape != expected.shape:
            raise ParityError(f"batch {batch}: ONNX gave {got.shape}, torch {expected.shape}")
        report.max_abs_diff[str(batch)] = float(np.max(np.abs(got - expected)))
    return report
