"""The MLflow pyfunc of an exported generator: `{"z": [N, nz], "label": [N]}` -> `{"image": ...}`.

`pipeline/export.py` logs the ONNX file as an MLflow model whose pyfunc loader is this module
(`mlflow.pyfunc.log_model(loader_module=..., data_path=...)`), so that `mlflow.pyfunc.load_model`
and `mlflow models serve` run it through `ganforge.inference.Generator`: a latent-class
generator takes a `label` (z₀ placed in the class's interval, from the prior in the file's
metadata), a conditional one takes it as its label input, and a generator without classes
refuses one with a one-line reason. The model is logged without a tensor signature on
purpose: MLflow drops inputs a tensor signature does not name, silently, so `label` would
never reach this check.

Imports no torch, and MLflow only to raise its error type (a 400 from `mlflow models serve`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.inference.generator import NO_CLASSES, Generator, GeneratorInputError

Z, LABEL = "z", "label"


class GeneratorPyfunc:
    """What MLflow's PyFuncModel wraps: `predict` on a dict of arrays (or z alone)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        meta = self.generator.metadata
        try:
            z, labels = self._inputs(data)
            if labels is not None and not meta.has_classes:
                raise GeneratorInputError(f"{LABEL}: {NO_CLASSES}; send z only")
            if meta.conditional and labels is None:
                raise GeneratorInputError(
                    f"{LABEL}: this generator is conditional; send one class per row of z "
                    f"(0..{meta.num_classes - 1})"
                )
            out = self.generator.run(z, labels)
        except GeneratorInputError as err:
            _refuse(str(err))
        return {meta.output_name: out}

    def _inputs(self, data: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(z float32 [N, nz], labels int64 [N] or None) from what MLflow passed."""
        nz = self.generator.nz
        if isinstance(data, np.ndarray):
            data = {Z: data}
        if hasattr(data, "to_dict") and not isinstance(data, dict):  # a pandas DataFrame
            raise GeneratorInputError(
                'send {"inputs": {"z": [[...], ...], "label": [...]}}: named arrays, not a table'
            )
        if not isinstance(data, dict):
            raise GeneratorInputError(f"expected a dict of arrays, got {type(data).__name__}")
        unknown = sorted(set(data) - {Z, LABEL})
        if unknown:
            raise GeneratorInputError(
                f"unknown input {unknown[0][:40]!r}: this model takes z [N, {nz}] and, with "
                "classes, label [N]"
            )
        if Z not in data:
            raise GeneratorInputError(f"missing input z: [N, {nz}] standard-normal latents")
        try:
            z = np.asarray(data[Z], dtype=np.float32)
        except (TypeError, ValueError):
            raise GeneratorInputError(f"z: expected numbers, [N, {nz}]") from None
        if z.ndim != 2 or z.shape[1] != nz:
            raise GeneratorInputError(f"z: expected [N, {nz}], got {list(z.shape)}")
        labels = data.get(LABEL)
        if labels is None:
            return z, None
        labels = np.asarray(labels).reshape(-1)
        if labels.dtype.kind not in "iu":
            raise GeneratorInputError(f"{LABEL}: expected integers, got {labels.dtype} values")
        if len(labels) == 1 and len(z) > 1:
            labels = np.repeat(labels, len(z))
        if len(labels) != len(z):
            raise GeneratorInputError(f"{LABEL}: got {len(labels)} labels for {len(z)} rows of z")
        return z, labels


def _refuse(message: str) -> None:
    """An MLflow error of the caller's input: `mlflow models serve` answers it with a 400."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    raise MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> GeneratorPyfunc:
    """MLflow's loader hook: `path` is the logged ONNX file (or a folder holding one)."""
    file = Path(path)
    if file.is_dir():
        found = sorted(file.glob("*.onnx"))
        if not found:
            raise FileNotFoundError(f"{path}: no .onnx file in the model's data")
        file = found[0]
    provider = os.environ.get("GANFORGE_PROVIDER", "auto")
    return GeneratorPyfunc(Generator.load(file, provider=provider))  # type: ignore[arg-type]
