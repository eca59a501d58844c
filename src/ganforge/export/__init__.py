"""ONNX export of trained generators: the file, its metadata, and checks against PyTorch."""

from __future__ import annotations

from ganforge.export.export import ExportError, example_inputs, export_generator, save_onnx, to_onnx
from ganforge.export.metadata import build_metadata
from ganforge.export.parity import ParityError, ParityReport, check_parity
from ganforge.export.rewrite import REWRITES, Rewrite, rewrite_for_onnx, subpixel_conv

__all__ = [
    "ExportError",
    "ParityError",
    "ParityReport",
    "REWRITES",
    "Rewrite",
    "build_metadata",
    "check_parity",
    "example_inputs",
    "export_generator",
    "rewrite_for_onnx",
    "save_onnx",
    "subpixel_conv",
    "to_onnx",
]
