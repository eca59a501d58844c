"""export stage: models/generator.pt -> models/generator.onnx, checked against PyTorch.

Writes metrics/export.json (parity per batch size, providers) and logs the metrics and the
ONNX model (registered under `mlflow.registered_model`) to the generator's MLflow run. Latency
is not measured here: timed in this process, beside PyTorch, the two runtimes share a heap and
two cores and the figures mislead; `bench/onnx_latency.py` times each runtime in its own worker
process (docs/results.md, "Export latency").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.export import (
    ParityError,
    build_metadata,
    check_parity,
    export_generator,
)
from ganforge.inference import ModelMetadata, best_providers
from ganforge.io import atomic_path
from pipeline.common import (
    GENERATOR_PATH,
    METRICS_DIR,
    ONNX_PATH,
    REPORTS_DIR,
    StageError,
    log_params,
    mlflow_run,
    read_generator,
    setup_logging,
    staged_outputs,
    write_metrics,
)
from pipeline.params import Params, flatten, load_params
from pipeline.registry import settle

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo
    from torch import nn

    from ganforge.config import ExportConfig
    from ganforge.models.spec import GeneratorSpec

FP16_PATH = Path("models/generator_fp16.onnx")
MODEL_ARTIFACT = "generator_onnx"
# metrics/export.json holds parity only, as a fraction of its tolerance rounded to 0.001
# (0: exact, 1: at the limit): the raw difference (~1e-9) and the latency swing between
# identical runs and would show in every diff; both stay in reports/export.json and MLflow.
HEADLINE = ("parity_of_atol", "fp16_parity_of_atol")


def _export_checked(
    G: nn.Module,
    spec: GeneratorSpec,
    meta: ModelMetadata,
    path: Path,
    cfg: ExportConfig,
    fp16: bool,
    target: Path | None = None,
) -> dict[str, Any]:
    """Export to `path`, replacing it only when parity holds; returns the parity report.

    `target` is the out that `path` stages (named in errors); default `path` itself.
    """
    atol = cfg.fp16_atol if fp16 else cfg.atol
    with atomic_path(path) as tmp:
        export_generator(
            G, spec, tmp, opset=cfg.opset, metadata=meta, fp16=fp16, rewrite=cfg.rewrite
        )
        report = check_parity(G, spec, tmp, cfg.parity_batches, atol=atol)
        try:
            report.raise_if_failed(str(target or path))
        except ParityError as err:
            raise StageError(f"export: {err}") from None
    return report.as_dict()


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


def main() -> None:
    log = setup_logging()
    params = load_params()
    cfg = params.export
    G, spec, extra = read_generator(GENERATOR_PATH, use_ema=cfg.use_ema)
    outs = (
        ONNX_PATH,
        METRICS_DIR / "export.json",
        REPORTS_DIR / "export.json",
        *((FP16_PATH,) if cfg.fp16 else ()),
    )
    # Everything is written to staged files and moved into place only when the whole stage,
    # MLflow logging included, succeeds: a failed export leaves the previous outs as they were.
    with staged_outputs(*outs) as staged, mlflow_run("export", params.mlflow.experiment) as run:
        import mlflow

        log_params(
            flatten({"export": cfg.model_dump()})
            | {"mlflow.registered_model": params.mlflow.registered_model}
        )
        meta = build_metadata(spec, {**extra, "run_id": run.info.run_id})
        log.info(
            "exporting %s generator (%s weights), opset %d, rewrite %s",
            spec.arch,
            meta.weights,
            cfg.opset,
            cfg.rewrite,
        )
        onnx_file = staged[ONNX_PATH]
        parity = _export_checked(G, spec, meta, onnx_file, cfg, fp16=False, target=ONNX_PATH)
        log.info(
            "exported %s (opset %d); parity: max |ORT - torch| = %.3g (atol %g)",
            ONNX_PATH,
            cfg.opset,
            parity["worst"],
            cfg.atol,
        )
        metrics: dict[str, Any] = {
            "max_abs_diff": parity["worst"],  # worst over parity_batches, per batch below
            "opset": cfg.opset,
            "weights": meta.weights,
            "size_bytes": onnx_file.stat().st_size,
            "parity": parity,
            "parity_of_atol": round(parity["worst"] / cfg.atol, 3),
        }
        if cfg.fp16:
            metrics["fp16"] = _export_checked(
                G, spec, meta, staged[FP16_PATH], cfg, fp16=True, target=FP16_PATH
            )
            metrics["fp16_parity_of_atol"] = round(metrics["fp16"]["worst"] / cfg.fp16_atol, 3)
            mlflow.log_artifact(str(staged[FP16_PATH]), artifact_path="onnx_fp16")
        providers = best_providers()
        metrics["providers"] = {"parity": parity["provider"], "serving": providers}
        write_metrics("export", metrics, HEADLINE, staged)
        flat = {
            f"export.{k}": v
            for k, v in flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        mlflow.log_metrics(flat)
        info = log_onnx_model(onnx_file, meta, spec, providers, params)
        log.info("logged ONNX model %s (providers %s)", info.model_uri, ", ".join(providers))
        if params.mlflow.registered_model:
            settle(params.mlflow.registered_model, run.info.run_id)


if __name__ == "__main__":
    main()
