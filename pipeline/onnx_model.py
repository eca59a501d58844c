"""The exported generator as an MLflow model: the ONNX file as a pyfunc model run by
`ganforge.inference.mlflow_pyfunc`, registered under `mlflow.registered_model`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ganforge.inference import ModelMetadata
from pipeline.params import Params

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from ganforge.models.spec import GeneratorSpec

MODEL_ARTIFACT = "generator_onnx"


def log_onnx_model(
    path: Path,
    meta: ModelMetadata,
    spec: GeneratorSpec | None,
    providers: list[str],
    params: Params,
) -> ModelInfo:
    """The ONNX file as an MLflow pyfunc model run by `ganforge.inference.mlflow_pyfunc`.

    Its `predict` takes {"z": [N, nz]} and, for a model with classes, "label": [N] (a
    latent-class generator places z₀ in the class's interval), and refuses a label for a
    model without classes: so it carries no tensor signature, through which MLflow would
    drop an unnamed `label` without a word. `providers` (serving) are recorded as metadata;
    the loader picks CUDA only where it works.
    """
    import mlflow
    import onnx
    import onnxruntime

    del spec  # the metadata says everything the model's users need
    inputs = "z [N, nz] float32" + (", label [N] int64" if meta.has_classes else "")
    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        loader_module="ganforge.inference.mlflow_pyfunc",
        data_path=str(path),
        # onnxruntime-gpu serves on CPU too; the plain `onnxruntime` wheel would clash with it.
        pip_requirements=[
            f"onnx=={onnx.__version__}",
            f"onnxruntime-gpu=={onnxruntime.__version__}",
        ],
        registered_model_name=params.mlflow.registered_model,
        metadata={**meta.to_props(), "pyfunc_inputs": inputs, "providers": providers},
    )
