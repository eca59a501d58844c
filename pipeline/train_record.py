"""What the train stage records of a run: its name and inputs in MLflow (params, the data set)
and, once trained, the kept generator, reports/train.json, metrics/train.json and their MLflow
twins."""

from __future__ import annotations

import logging
from typing import Any

from ganforge.models import save_generator
from ganforge.training import QualityMonitor, TrainResult
from ganforge.training.quality import keep_best
from pipeline.params import flatten
from pipeline.paths import GENERATOR_PATH, PREPARED_DIR, REPORTS_DIR
from pipeline.stage import write_metrics
from pipeline.tracking import default_run_name, log_params, run_name_for

# metrics/train.json: the training time; the validation curve, losses, step counts and
# throughput go to reports/train.json and MLflow (evaluate's scores are the ones to compare).
HEADLINE = ("train_seconds",)


def run_name(params: Any, config: Any, meta: dict[str, Any], arch: str) -> str:
    """`mlflow.run_name`, else the DVC experiment's name, else e.g. `digits-dcgan-ns-s0`."""
    fallback = default_run_name(
        meta.get("dataset"), arch, config.loss, params.seed, config.labels == "conditional"
    )
    return run_name_for(params.mlflow.run_name, fallback)


def log_inputs(params: Any, recipe: Any, meta: dict[str, Any]) -> None:
    """The resolved params (the recipe's values, not `auto`) and data/prepared as the input."""
    train = {**recipe.config.model_dump(mode="json"), "recipe": recipe.name}
    prepare = params.prepare.model_dump(mode="json")
    log_params(flatten({"seed": params.seed, "prepare": prepare, "train": train}))
    log_dataset(meta)


def log_dataset(meta: dict[str, Any]) -> None:
    """data/prepared as the run's training input (digest: the store's content hash)."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset

    # made at import by mlflow.data.artifact_dataset_sources, so invisible to type checkers
    from mlflow.data.sources import LocalArtifactDatasetSource  # type: ignore[attr-defined]

    content_hash = str(meta.get("content_hash", ""))
    # Dataset marks `profile` abstract, but it is no ABC and MetaDataset is meant to be made
    dataset = MetaDataset(  # type: ignore[abstract]
        LocalArtifactDatasetSource(str(PREPARED_DIR.resolve())),
        name=f"{meta.get('dataset', 'data')}-train",
        digest=content_hash[:32] or None,
    )
    mlflow.log_input(dataset, context="training", tags={"content_hash": content_hash})
    mlflow.set_tag("dataset_hash", content_hash)


def record(
    result: TrainResult,
    spec: Any,
    run_id: str,
    params: Any,
    recipe: Any,
    meta: dict[str, Any],
    monitor: QualityMonitor | None,
    warnings: list[str],
    lectures: Any = None,
) -> None:
    """Save the kept generator with its record, write the report and metrics, log them."""
    import mlflow

    train_config = recipe.config.model_dump(mode="json")
    kept = keep_best(result, monitor)
    extra = {
        "run_id": run_id,
        "dataset_hash": meta.get("content_hash"),
        "dataset": meta.get("dataset"),
        "class_names": list(meta.get("classes") or []),
        "train_config": train_config,
        "recipe": recipe.name,
        "seed": params.seed,
        "step": kept["kept_step"],
        "epoch": result.epoch,
        "kept": kept["kept"],
    }
    save_generator(GENERATOR_PATH, spec, result.generator, result.ema, result.discriminator, extra)
    metrics = {
        **{k: result.last.get(k) for k in ("loss_d", "loss_g", "d_real", "d_fake")},
        "steps": result.step,
        "epochs": result.epoch,
        "images_per_s": round(result.images_per_s, 2),
        "train_seconds": round(result.total_seconds, 2),
        "session_seconds": round(result.seconds, 2),
        "device": result.device,
        "amp": result.amp,
        "channels_last": result.channels_last,
        "resumed_from_step": result.resumed_from,
        # the lectures' snapshots' own wall time, this session (bench/quality.py: its share)
        "lectures_seconds": round(lectures.seconds, 2) if lectures is not None else None,
        "budget": result.budget,
        "recipe": {"name": recipe.name, "why": recipe.why, "reasons": recipe.reasons},
        "train_config": train_config,
        **kept,
        "warnings": warnings + (monitor.warnings if monitor else []),
    }
    write_metrics("train", metrics, HEADLINE)
    # what `device`, `amp` and `channels_last` resolved to on this machine (auto differs by
    # hardware: bf16 only on CPUs with bf16 units), beside the request logged as train.*
    resolved = {"device": result.device, "amp": result.amp, "channels_last": result.channels_last}
    log_params(flatten({"resolved": resolved}))
    mlflow.log_metrics({f"final_{k}": float(v) for k, v in metrics.items() if _num(v)})
    mlflow.log_artifact(str(REPORTS_DIR / "train.json"))
    logging.getLogger("ganforge").info(
        "trained %d steps (%d epochs) in %.0f s on %s: %s",
        result.step,
        result.epoch,
        result.total_seconds,
        result.device,
        GENERATOR_PATH,
    )


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
