"""Latency of the ONNX file in onnxruntime next to the PyTorch generator in eager mode."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganforge.export.export import example_inputs
from ganforge.inference.session import create_session
from ganforge.models.spec import GeneratorSpec


def _median_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


@torch.inference_mode()
def measure_latency(
    generator: nn.Module,
    spec: GeneratorSpec,
    onnx_path: str | os.PathLike[str],
    batches: tuple[int, ...] = (1, 64),
    repeats: int = 20,
    warmup: int = 3,
    provider: str = "cpu",
) -> dict[str, Any]:
    """Median milliseconds per call and samples per second, ORT vs torch eager, per batch.

    Both run on the CPU (torch eager with its default thread count, onnxruntime with its
    own) on the same inputs. Returns {"batch_1": {"ort_ms", "torch_ms", "speedup",
    "ort_samples_per_s", "torch_samples_per_s"}, ..., "provider": ...}.
    """
    session = create_session(onnx_path, provider)  # type: ignore[arg-type]
    output = session.get_outputs()[0].name
    model = generator.to("cpu").float().eval()
    result: dict[str, Any] = {"provider": session.get_providers()[0], "repeats": repeats}
    for batch in batches:
        z, labels = example_inputs(spec, batch)
        feed = {"z": z.numpy()}
        if labels is not None:
            feed["label"] = labels.numpy()
        ort_ms = _median_ms(lambda feed=feed: session.run([output], feed), repeats, warmup)
        torch_ms = _median_ms(lambda z=z, y=labels: model(z, y), repeats, warmup)
        result[f"batch_{batch}"] = {
            "ort_ms": ort_ms,
            "torch_ms": torch_ms,
            "speedup": torch_ms / ort_ms,
            "ort_samples_per_s": batch / ort_ms * 1e3,
            "torch_samples_per_s": batch / torch_ms * 1e3,
        }
    return result
