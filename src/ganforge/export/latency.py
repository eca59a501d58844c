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


def _timings_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> tuple[float, float]:
    """(median, best) milliseconds per call: the best is robust to a busy machine."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3


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
    """Median (and best) milliseconds per call and samples/s, ORT vs torch eager, per batch.

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
        ort_ms, ort_best = _timings_ms(lambda f=feed: session.run([output], f), repeats, warmup)
        torch_ms, torch_best = _timings_ms(lambda z=z, y=labels: model(z, y), repeats, warmup)
        result[f"batch_{batch}"] = {
            "ort_ms": ort_ms,
            "torch_ms": torch_ms,
            "ort_best_ms": ort_best,
            "torch_best_ms": torch_best,
            "best_speedup": torch_best / ort_best,
            "speedup": torch_ms / ort_ms,
            "ort_samples_per_s": batch / ort_ms * 1e3,
            "torch_samples_per_s": batch / torch_ms * 1e3,
        }
    return result
