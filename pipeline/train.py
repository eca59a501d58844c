"""Stage `train`: fit the GAN of params.yaml `train:` on data/prepared (see dvc.yaml).

Outs: models/generator.pt, models/checkpoints/ (persist: a killed run resumes),
plots/samples/, plots/train_history.csv, metrics/train.json; MLflow run with params,
per-step metrics, sample grids and the data set as an input. Under torchrun each process
trains its shard (DDP); rank 0 alone logs and writes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ganforge.data import DataError, load_meta, load_split
from ganforge.device import resolve_device
from ganforge.models import save_generator
from ganforge.training import (
    Callback,
    HealthMonitor,
    HistoryCSV,
    NonFiniteLossError,
    SampleGrid,
    cleanup_distributed,
    fit,
    init_distributed,
    make_spec,
)
from pipeline.common import (
    CHECKPOINT_DIR,
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
HEADLINE = ("train_seconds",)


class ProgressBar(Callback):
    """A rich progress bar with the latest losses, D(x), D(G(z)) and throughput."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, None

    def on_fit_start(self, trainer: Any) -> None:
        self.task = self.progress.add_task(
            "train", total=trainer.total_steps, completed=trainer.step, stats=""
        )

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        stats = (
            f"loss_d {row['loss_d']:.3f} loss_g {row['loss_g']:.3f} D(x) {row['d_real']:.2f} "
            f"D(G(z)) {row['d_fake']:.2f} {row['images_per_s']:.0f} img/s"
        )
        self.progress.update(self.task, stats=stats)

    def on_step_end(self, trainer: Any) -> None:
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
    from mlflow.data.sources import LocalArtifactDatasetSource

    content_hash = str(meta.get("content_hash", ""))
    dataset = MetaDataset(
        LocalArtifactDatasetSource(str(PREPARED_DIR.resolve())),
        name=f"{meta.get('dataset', 'data')}-train",
        digest=content_hash[:32] or None,
    )
    mlflow.log_input(dataset, context="training", tags={"content_hash": content_hash})
    mlflow.set_tag("dataset_hash", content_hash)


def main() -> None:
    log = setup_logging()
    params = load_params()
    config = params.train
    require_upstream(PREPARED_DIR)
    try:
        meta = load_meta(PREPARED_DIR)
        train = load_split(PREPARED_DIR, "train")
        labels = train.labels if len(train) and int(train.labels.min()) >= 0 else None
        spec = make_spec(
            config, train.data.shape[1:], meta.get("num_classes") or 0, meta.get("classes") or ()
        )
    except (DataError, ValueError) as err:
        raise StageError(f"train: {err}") from None
    try:
        dist = init_distributed(use_cuda=resolve_device(config.device).type == "cuda")
    except (RuntimeError, ValueError) as err:
        raise StageError(f"train: cannot join the DDP process group: {err}") from None
    if not dist.is_main:
        logging.getLogger("ganforge").setLevel(logging.WARNING)
    grids = SampleGrid(SAMPLES_DIR)
    if dist.is_main:
        SAMPLES_DIR.mkdir(parents=True, exist_ok=True)  # a DVC out even before the first grid
    run_ctx = (
        mlflow_run("train", params.mlflow.experiment, _run_name(params, meta))
        if dist.is_main
        else contextlib.nullcontext()
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
    )
    with run_ctx as run, Progress(*columns, disable=not dist.is_main) as progress:
        if dist.is_main:
            log_params(
                flatten(
                    {
                        "seed": params.seed,
                        "prepare": params.prepare.model_dump(mode="json"),
                        "train": config.model_dump(mode="json"),
                    }
                )
            )
            _log_dataset(meta)
        callbacks = [grids, HistoryCSV(HISTORY_CSV), HealthMonitor(), ProgressBar(progress)]
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
        if not dist.is_main:
            return
        extra = {
            "run_id": run.info.run_id,
            "dataset_hash": meta.get("content_hash"),
            "dataset": meta.get("dataset"),
            "class_names": list(meta.get("classes") or []),
            "train_config": config.model_dump(mode="json"),
            "seed": params.seed,
            "step": result.step,
            "epoch": result.epoch,
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
            "resumed_from_step": result.resumed_from,
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


def _run_name(params: Any, meta: dict[str, Any]) -> str:
    """`mlflow.run_name`, else the DVC experiment's name, else e.g. `digits-dcgan-ns-s0`."""
    cfg = params.train
    fallback = default_run_name(
        meta.get("dataset"), cfg.model, cfg.loss, params.seed, cfg.conditional
    )
    return run_name_for(params.mlflow.run_name, fallback)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


if __name__ == "__main__":
    main()
