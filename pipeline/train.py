"""Stage `train`: fit the GAN of params.yaml `train:` on data/prepared (see dvc.yaml).

Outs: models/generator.pt, models/checkpoints/ (persist: a killed run resumes),
plots/samples/, plots/train_history.csv, metrics/train.json; MLflow run with params,
per-step metrics, sample grids and the data set as an input. Every train.fid_every steps G is
scored on the validation split (`QualityMonitor`: FID with models/classifier.pt, or the toy
data's measure) and, with train.keep: best, the best-scoring G is the one saved. Under torchrun
each process trains its shard (DDP); rank 0 alone logs and writes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ganforge.classifier import NoClassifierError, load_classifier
from ganforge.data import DataError, load_meta, load_split
from ganforge.device import resolve_device
from ganforge.metrics import ClassifierFeatureNet
from ganforge.models import save_generator
from ganforge.recipe import DataFacts
from ganforge.training import (
    Callback,
    GaussianJSD,
    HealthMonitor,
    HistoryCSV,
    ModeQuality,
    NonFiniteLossError,
    QualityMonitor,
    SampleGrid,
    ValidationFID,
    cleanup_distributed,
    fit,
    init_distributed,
    make_spec,
)
from pipeline.common import (
    CHECKPOINT_DIR,
    CLASSIFIER_PATH,
    GENERATOR_PATH,
    PLOTS_DIR,
    PREPARED_DIR,
    REPORTS_DIR,
    StageError,
    default_run_name,
    log_params,
    mlflow_run,
    require_upstream,
    run_name_for,
    setup_logging,
    write_metrics,
)
from pipeline.params import flatten, load_params

SAMPLES_DIR = PLOTS_DIR / "samples"
HISTORY_CSV = PLOTS_DIR / "train_history.csv"
# metrics/train.json: what compares across runs (the step count is the params', losses are
# noisy): steps, losses, throughput, device are in reports/train.json
# metrics/train.json: the training time; the validation curve, losses, step counts and
# throughput go to reports/train.json and MLflow (evaluate's scores are the ones to compare).
HEADLINE = ("train_seconds",)


# Below this many columns the bar shows the two losses and the throughput only.
WIDE = 120


def progress_columns() -> tuple[Any, ...]:
    """The train bar: steps done, elapsed and remaining time (ETA), then the latest figures."""
    return (
        TextColumn("{task.description}"),
        BarColumn(bar_width=10),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
    )


class ProgressBar(Callback):
    """A rich progress bar with ETA, the latest losses, D(x), D(G(z)), throughput and the
    latest validation score; fitted to the terminal's width (80 columns and up)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None  # added by on_fit_start
        self.score = ""

    def on_fit_start(self, trainer: Any) -> None:
        self.task = self.progress.add_task(
            "train", total=trainer.total_steps, completed=trainer.step, stats=""
        )

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        for column in ("fid_val", "mode_quality_val", "jsd_val"):
            value = row.get(column)
            if isinstance(value, float) and value == value:
                self.score = f"{column} {value:.3f}"
        losses = f"loss D {row['loss_d']:.2f} G {row['loss_g']:.2f}"
        speed = f"{row['images_per_s']:.0f} img/s"
        if self.progress.console.width >= WIDE:
            outputs = f"D(x) {row['d_real']:.2f} D(G(z)) {row['d_fake']:.2f}"
            stats = "  ".join(s for s in (losses, outputs, speed, self.score) if s)
        else:
            stats = f"{losses}  {speed}"
        if self.task is not None:
            self.progress.update(self.task, stats=stats)

    def on_step_end(self, trainer: Any) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=trainer.step)


class MlflowLogger(Callback):
    """Per-log-step metrics and per-epoch sample grids into the active MLflow run."""

    def __init__(self, grids: SampleGrid) -> None:
        self.grids = grids

    def on_fit_start(self, trainer: Any) -> None:
        for row in trainer.history:  # rows restored from a checkpoint: keep the curve whole
            self.on_log(trainer, row)

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        import mlflow

        metrics = {k: float(v) for k, v in row.items() if k != "step" and v == v}
        mlflow.log_metrics(metrics, step=int(row["step"]))

    def on_epoch_end(self, trainer: Any, epoch: int) -> None:
        import mlflow

        if self.grids.paths and self.grids.paths[-1].name == f"epoch_{epoch:04d}.png":
            mlflow.log_artifact(str(self.grids.paths[-1]), artifact_path="samples")


def _log_dataset(meta: dict[str, Any]) -> None:
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


def _quality_monitor(
    params: Any, config: Any, meta: dict[str, Any], labels: Any, device: Any
) -> tuple[QualityMonitor | None, str | None]:
    """The validation monitor for this data (FID, mode quality or JSD), or None and why not.

    Images are scored by FID of the domain classifier's features (models/classifier.pt, made
    by the classifier stage) against the validation split; without that classifier the run
    keeps its last generator and says so.
    """
    import torch

    if config.fid_every == 0:
        return None, "train.fid_every is 0"
    prior = None
    if meta.get("dataset") == "gaussian_1d":
        measure: Any = GaussianJSD(meta["mean"], meta["std"])
    elif meta.get("modes") and meta.get("mode_std"):
        measure = ModeQuality(meta["modes"], float(meta["mode_std"]))
        prior = torch.ones(len(meta["modes"]))
    else:
        if not CLASSIFIER_PATH.exists():
            return None, f"{CLASSIFIER_PATH} is missing (run `dvc repro classifier` first)"
        try:
            classifier, _ = load_classifier(CLASSIFIER_PATH)
        except NoClassifierError as err:
            return None, str(err)
        val = load_split(PREPARED_DIR, "val")
        measure = ValidationFID(
            ClassifierFeatureNet(classifier), val.data, config.fid_samples, params.seed, 500, device
        )
        if labels is not None:
            prior = torch.bincount(labels, minlength=classifier.num_classes)
    monitor = QualityMonitor(
        measure,
        config.fid_every,
        config.fid_samples,
        config.keep,
        prior,
        seed=params.seed + 2,
        class_names=meta.get("classes") or (),
    )
    return monitor, None


def main() -> None:
    log = setup_logging()
    params = load_params()
    require_upstream(PREPARED_DIR)
    try:
        meta = load_meta(PREPARED_DIR)
        recipe = params.train.resolve(DataFacts.from_meta(meta))
        config = recipe.config
        log.info("train: %s", recipe.summary())
        train = load_split(PREPARED_DIR, "train")
        labels = train.labels if len(train) and int(train.labels.min()) >= 0 else None
        spec = make_spec(
            config,
            train.data.shape[1:],
            meta.get("num_classes") or 0,
            meta.get("classes") or (),
            labels,
        )
    except (DataError, ValueError) as err:
        raise StageError(f"train: {err}") from None
    try:  # before DDP: a CUDA request on a CPU-only machine must say exactly that
        use_cuda = resolve_device(config.device).type == "cuda"
    except ValueError as err:
        raise StageError(f"train.device = {config.device!r}: {err}") from None
    try:
        monitor, no_monitor = _quality_monitor(
            params, config, meta, labels, resolve_device(config.device)
        )
    except (DataError, ValueError) as err:
        raise StageError(f"train: {err}") from None
    if monitor is None:
        log.warning(
            "train: no validation score during training (%s): keeping the last G", no_monitor
        )
    try:
        dist = init_distributed(use_cuda=use_cuda)
    except (RuntimeError, ValueError) as err:
        raise StageError(f"train: cannot join the DDP process group: {err}") from None
    if not dist.is_main:
        logging.getLogger("ganforge").setLevel(logging.WARNING)
    grids = SampleGrid(SAMPLES_DIR)
    if dist.is_main:
        SAMPLES_DIR.mkdir(parents=True, exist_ok=True)  # a DVC out even before the first grid
    run_ctx = (
        mlflow_run("train", params.mlflow.experiment, _run_name(params, config, meta, spec.arch))
        if dist.is_main
        else contextlib.nullcontext()
    )
    with run_ctx as run, Progress(*progress_columns(), disable=not dist.is_main) as progress:
        if dist.is_main:
            log_params(
                flatten(
                    {
                        "seed": params.seed,
                        "prepare": params.prepare.model_dump(mode="json"),
                        "train": {**config.model_dump(mode="json"), "recipe": recipe.name},
                    }
                )
            )
            _log_dataset(meta)
        health = HealthMonitor()
        # The monitor first: it adds its score to the row the CSV and MLflow loggers write.
        callbacks = [grids, HistoryCSV(HISTORY_CSV), health, ProgressBar(progress)]
        if monitor is not None:
            callbacks.insert(0, monitor)
        if dist.is_main:
            callbacks.append(MlflowLogger(grids))
        try:
            result = fit(
                config,
                train.data,
                labels,
                spec=spec,
                seed=params.seed,
                checkpoint_dir=CHECKPOINT_DIR,
                callbacks=callbacks,
                dataset_hash=meta.get("content_hash"),
                dist=dist,
            )
        except (NonFiniteLossError, ValueError) as err:
            raise StageError(f"train: {err}") from None
        finally:
            if not dist.is_main:
                cleanup_distributed()
        if not dist.is_main or run is None:  # only the main process has an MLflow run
            return
        kept = _keep_best(result, monitor)
        extra = {
            "run_id": run.info.run_id,
            "dataset_hash": meta.get("content_hash"),
            "dataset": meta.get("dataset"),
            "class_names": list(meta.get("classes") or []),
            "train_config": config.model_dump(mode="json"),
            "recipe": recipe.name,
            "seed": params.seed,
            "step": kept["kept_step"],
            "epoch": result.epoch,
            "kept": kept["kept"],
        }
        save_generator(
            GENERATOR_PATH, spec, result.generator, result.ema, result.discriminator, extra
        )
        last = result.last
        metrics = {
            **{k: last.get(k) for k in ("loss_d", "loss_g", "d_real", "d_fake")},
            "steps": result.step,
            "epochs": result.epoch,
            "images_per_s": round(result.images_per_s, 2),
            "train_seconds": round(result.total_seconds, 2),
            "session_seconds": round(result.seconds, 2),
            "device": result.device,
            "amp": result.amp,
            "channels_last": result.channels_last,
            "resumed_from_step": result.resumed_from,
            "budget": result.budget,
            "recipe": {"name": recipe.name, "reasons": recipe.reasons},
            "train_config": config.model_dump(mode="json"),
            **kept,
            "warnings": health.warnings + (monitor.warnings if monitor else []),
        }
        write_metrics("train", metrics, HEADLINE)
        import mlflow

        mlflow.log_metrics({f"final_{k}": float(v) for k, v in metrics.items() if _num(v)})
        mlflow.log_artifact(str(REPORTS_DIR / "train.json"))
        log.info(
            "trained %d steps (%d epochs) in %.0f s on %s: %s",
            result.step,
            result.epoch,
            result.total_seconds,
            result.device,
            GENERATOR_PATH,
        )
    cleanup_distributed()


def _keep_best(result: Any, monitor: QualityMonitor | None) -> dict[str, Any]:
    """Load the best snapshot into the result's modules when `keep: best` asks for it.

    Returns what metrics/train.json records about the choice: which generator was kept, its
    step, the best validation score and its step, and what one evaluation cost.
    """
    info: dict[str, Any] = {"kept": "last", "kept_step": result.step}
    if monitor is None:
        info["quality_measure"] = None
        return info
    column = monitor.measure.column
    info.update(
        {
            "quality_measure": column,
            "best_step": monitor.best_step,
            f"best_{column}": monitor.best_value,
            f"last_{column}": monitor.curve[-1][1] if monitor.curve else None,
            "quality_evaluations": len(monitor.curve),
            "quality_seconds_per_evaluation": _round(monitor.mean_seconds()),
        }
    )
    best = monitor.best_weights()
    if monitor.keep == "best" and best is not None:
        result.generator.load_state_dict(best["generator"])
        if result.ema is not None and best["generator_ema"] is not None:
            result.ema.load_state_dict(best["generator_ema"])
        result.discriminator.load_state_dict(best["discriminator"])
        info.update(kept="best", kept_step=monitor.best_step)
    return info


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _run_name(params: Any, cfg: Any, meta: dict[str, Any], arch: str) -> str:
    """`mlflow.run_name`, else the DVC experiment's name, else e.g. `digits-dcgan-ns-s0`."""
    fallback = default_run_name(
        meta.get("dataset"), arch, cfg.loss, params.seed, cfg.labels == "conditional"
    )
    return run_name_for(params.mlflow.run_name, fallback)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


if __name__ == "__main__":
    main()
