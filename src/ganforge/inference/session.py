"""onnxruntime sessions with an honest provider choice, quiet on machines without CUDA.

onnxruntime-gpu lists CUDAExecutionProvider as available wherever it is installed; on a
machine without a GPU or without the CUDA libraries, asking for it logs errors to stderr and
silently falls back to the CPU. Here CUDA is tried only where a driver is present, with the
runtime's default logger muted during the attempt, and kept only when the session really runs
on it (`session.get_providers()`).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from ganforge.inference.modelfile import UnsafeModelError, check_model, read_model

log = logging.getLogger(__name__)

Provider = Literal["auto", "cpu", "cuda"]
PROVIDERS: tuple[str, ...] = ("auto", "cpu", "cuda")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

# onnxruntime's own default (warning); restored after a muted CUDA attempt.
_ORT_DEFAULT_SEVERITY = 2
_FATAL_ONLY = 4
_SESSION_SEVERITY = 3  # errors only: no "nodes not assigned to the preferred provider" notes


class ModelFileError(ValueError):
    """The model file is missing or is not a loadable ONNX model."""


class ProviderError(RuntimeError):
    """The execution provider asked for cannot run here."""


@lru_cache(maxsize=1)
def _cuda_driver_present() -> bool:
    """A cheap check before trying CUDA: is there an NVIDIA driver to load at all?"""
    if CUDA not in ort.get_available_providers():
        return False
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    # CUDA/cuDNN may live only in pip's nvidia-* wheels (installed with torch): load them
    # the way onnxruntime documents, without importing torch.
    with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
        ort.preload_dlls(directory="")
    return True


def _session_options(threads: int | None, spinning: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = _SESSION_SEVERITY
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _open(
    model: str | bytes, providers: list[str], threads: int | None, spinning: bool
) -> ort.InferenceSession:
    options = _session_options(threads, spinning)
    return ort.InferenceSession(model, options, providers=providers)


def create_session(
    model: str | os.PathLike[str] | bytes,
    provider: Provider = "auto",
    threads: int | None = None,
    spinning: bool = True,
    name: str | None = None,
) -> ort.InferenceSession:
    """An InferenceSession on CUDA when asked for (`cuda`) or when it really works (`auto`).

    `auto` quietly falls back to the CPU; `cuda` raises ProviderError where CUDA cannot run.
    A missing, unreadable or unsafe model raises ModelFileError: a file is read once, checked
    (`ganforge.inference.modelfile`: no external data, bounded metadata) and onnxruntime gets
    those bytes, never the path. `threads`: onnxruntime's intra-op threads (default: its own
    choice); `spinning=False` lets them sleep as soon as a run ends instead of busy-waiting for
    the next one, so that they do not take cores from other work. `name`: how errors call it.
    """
    if provider not in PROVIDERS:
        raise ProviderError(f"provider {provider!r}: use one of {', '.join(PROVIDERS)}")
    source = model if isinstance(model, bytes) else load_model_bytes(model)
    name = name or (str(model) if not isinstance(model, bytes) else "the model bytes")
    if isinstance(model, bytes):
        try:
            check_model(source)
        except UnsafeModelError as err:
            raise ModelFileError(f"{name}: {err}") from None
    try:
        if provider != "cpu" and _cuda_driver_present():
            ort.set_default_logger_severity(_FATAL_ONLY)
            try:
                session = _open(source, [CUDA, CPU], threads, spinning)
            finally:
                ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
            if CUDA in session.get_providers():
                return session
            log.debug("CUDAExecutionProvider did not start; using the CPU")
        if provider == "cuda":
            raise ProviderError(
                "provider 'cuda' asked for, but onnxruntime cannot run on CUDA here "
                "(no GPU, driver or CUDA/cuDNN libraries): use --provider auto or cpu"
            )
        return _open(source, [CPU], threads, spinning)
    except ProviderError:
        raise
    except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        first = first if len(first) <= 300 else first[:297] + "..."
        raise ModelFileError(f"{name}: not a loadable ONNX model ({first})") from None


def load_model_bytes(path: str | os.PathLike[str]) -> bytes:
    """The checked bytes of the ONNX file at `path` (ModelFileError, one line, if unsafe)."""
    try:
        return read_model(path)
    except FileNotFoundError:
        raise ModelFileError(f"{Path(path)}: no such model file") from None
    except UnsafeModelError as err:
        raise ModelFileError(f"{Path(path)}: {err}") from None
    except OSError as err:
        raise ModelFileError(f"{Path(path)}: cannot read it ({err.strerror or err})") from None


def best_providers() -> list[str]:
    """Providers to declare for serving on this machine: CUDA first only where it works."""
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = create_session(probe.SerializeToString(), "auto")
    return [CUDA, CPU] if CUDA in session.get_providers() else [CPU]
