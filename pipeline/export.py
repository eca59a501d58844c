"""export stage: models/generator.pt -> models/generator.onnx, checked against PyTorch.

Writes metrics/export.json (parity per batch size, providers) and logs the metrics and the
ONNX model (registered under `mlflow.registered_model`) to the generator's MLflow run. Latency
is not measured here: timed in this process, beside PyTorch, the two runtimes share a heap and
two cores and the figures mislead; `bench/onnx_latency.py` times each runtime in its own worker
process (docs/results.md, "Export latency").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.export import ParityError, build_metadata, check_parity, export_generator
from ganforge.inference import ModelMetadata, best_providers
from ganforge.io import atomic_path
from pipeline.onnx_model import log_onnx_model
from pipeline.params import flatten, load_params
from pipeline.paths import FP16_ONNX_PATH, GENERATOR_PATH, METRICS_DIR, ONNX_PATH, REPORTS_DIR
from pipeline.registry import settle
from pipeline.stage import (
    StageError,
    read_generator,
    setup_logging,
    stage_main,
    staged_outputs,
    write_metrics,
)
from pipeline.tracking import log_params, mlflow_run

if TYPE_CHECKING:
    from torch import nn

    from ganforge.config import ExportConfig
    from ganforge.models.spec import GeneratorSpec

# metrics/export.json holds parity only, as a fraction of its tolerance rounded to 0.001
# (0: exact, 1: at the limit): the raw difference (~1e-9) and the latency swing between
# identical runs and would show in every diff; both stay in reports/export.json and MLflow.
HEADLINE = ("parity_of_atol", "fp16_parity_of_atol")


@stage_main("export")
def main() -> None:
    log = setup_logging()
    params = load_params()
    cfg = params.export
    G, spec, extra = read_generator(GENERATOR_PATH, use_ema=cfg.use_ema)
    outs = (
        ONNX_PATH,
        METRICS_DIR / "export.json",
        REPORTS_DIR / "export.json",
        *((FP16_ONNX_PATH,) if cfg.fp16 else ()),
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
            spec.arch, meta.weights, cfg.opset, cfg.rewrite,
        )  # fmt: skip
        metrics = _export(G, spec, meta, cfg, staged)
        providers = best_providers()
        metrics["providers"] = {"parity": metrics["parity"]["provider"], "serving": providers}
        write_metrics("export", metrics, HEADLINE, staged)
        flat = {
            f"export.{k}": v
            for k, v in flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        mlflow.log_metrics(flat)
        info = log_onnx_model(staged[ONNX_PATH], meta, spec, providers, params)
        log.info("logged ONNX model %s (providers %s)", info.model_uri, ", ".join(providers))
        if params.mlflow.registered_model:
            settle(params.mlflow.registered_model, run.info.run_id)


def _export(
    G: nn.Module, spec: GeneratorSpec, meta: ModelMetadata, cfg: ExportConfig,
    staged: dict[Path, Path],
) -> dict[str, Any]:  # fmt: skip
    """The ONNX file (and its fp16 twin when asked) into the staged outs; their figures."""
    import mlflow

    onnx_file = staged[ONNX_PATH]
    parity = _export_checked(G, spec, meta, onnx_file, cfg, fp16=False, target=ONNX_PATH)
    logging.getLogger("ganforge").info(
        "exported %s (opset %d); parity: max |ORT - torch| = %.3g (atol %g)",
        ONNX_PATH, cfg.opset, parity["worst"], cfg.atol,
    )  # fmt: skip
    metrics: dict[str, Any] = {
        "max_abs_diff": parity["worst"],  # worst over parity_batches, per batch below
        "opset": cfg.opset,
        "weights": meta.weights,
        "size_bytes": onnx_file.stat().st_size,
        "parity": parity,
        "parity_of_atol": round(parity["worst"] / cfg.atol, 3),
    }
    if cfg.fp16:
        half = staged[FP16_ONNX_PATH]
        metrics["fp16"] = _export_checked(G, spec, meta, half, cfg, True, FP16_ONNX_PATH)
        metrics["fp16_parity_of_atol"] = round(metrics["fp16"]["worst"] / cfg.fp16_atol, 3)
        mlflow.log_artifact(str(half), artifact_path="onnx_fp16")
    return metrics


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


if __name__ == "__main__":
    main()
