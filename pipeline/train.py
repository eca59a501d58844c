"""Stage `train`: fit the GAN of params.yaml `train:` on data/prepared (see dvc.yaml).

Outs: models/generator.pt, models/checkpoints/ (persist: a killed run resumes),
plots/samples/, plots/train_history.csv, plots/lectures/ (the lectures' pictures),
metrics/train.json; MLflow run with params, per-step metrics, sample grids and the data set as
an input. Every train.fid_every steps G is
scored on the validation split (`monitor_for`: FID with models/classifier.pt, or the toy
data's measure) and, with train.keep: best, the best-scoring G is the one saved. Under torchrun
each process trains its shard (DDP); rank 0 alone logs and writes.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.progress import Progress

from ganforge.data import load_split
from ganforge.device import resolve_device
from ganforge.lectures import LectureSnapshots
from ganforge.training import (
    Callback,
    DistContext,
    HealthMonitor,
    HistoryCSV,
    NonFiniteLossError,
    QualityMonitor,
    SampleGrid,
    TrainResult,
    cleanup_distributed,
    fit,
    init_distributed,
)
from pipeline import paths
from pipeline.params import load_params
from pipeline.stage import StageError, setup_logging, stage_main
from pipeline.tracking import mlflow_run
from pipeline.train_callbacks import MlflowLogger, ProgressBar, progress_columns
from pipeline.train_inputs import TrainInputs, quality_monitor, read_inputs
from pipeline.train_record import log_inputs, record, run_name


@stage_main("train")
def main() -> None:
    setup_logging()
    params = load_params()
    inputs = read_inputs(params)
    recipe, meta, spec = inputs.recipe, inputs.meta, inputs.spec
    config = recipe.config
    try:  # before DDP: a CUDA request on a CPU-only machine must say exactly that
        device = resolve_device(config.device)
    except ValueError as err:
        raise StageError(f"train.device = {config.device!r}: {err}") from None
    # The monitor's class prior is the data's: it watches the classes of real data.
    monitor = quality_monitor(params, config, meta, inputs.data_labels, device)
    try:
        dist = init_distributed(use_cuda=device.type == "cuda")
    except (RuntimeError, ValueError) as err:
        raise StageError(f"train: cannot join the DDP process group: {err}") from None
    if not dist.is_main:  # trains its shard; rank 0 alone logs and writes
        logging.getLogger("ganforge").setLevel(logging.WARNING)
        try:
            _fit(params, config, inputs, monitor, dist)
        finally:
            cleanup_distributed()
        return
    paths.SAMPLES_DIR.mkdir(parents=True, exist_ok=True)  # a DVC out even before the first grid
    name = run_name(params, config, meta, spec.arch)
    with mlflow_run("train", params.mlflow.experiment, name) as run:
        log_inputs(params, recipe, meta)
        result, warnings, staged = _fit(params, config, inputs, monitor, dist)
        lectures = staged[-1]  # what drawing the lectures' pictures cost this run
        record(result, spec, run.info.run_id, params, recipe, meta, monitor, warnings, lectures)
        for out in staged:  # the history and grids of the saved model, not before it
            out.commit()
    cleanup_distributed()


def _fit(
    params: Any, config: Any, inputs: TrainInputs, monitor: QualityMonitor | None,
    dist: DistContext,
) -> tuple[TrainResult, list[str], tuple[HistoryCSV, SampleGrid, LectureSnapshots]]:  # fmt: skip
    """`fit` with the stage's callbacks: its result, the health monitor's warnings, and the
    history, grids and lecture pictures it staged (to commit once the model is saved)."""
    grids = SampleGrid(paths.SAMPLES_DIR, defer_commit=True)
    history, health = HistoryCSV(paths.HISTORY_CSV, defer_commit=True), HealthMonitor()
    val = load_split(paths.PREPARED_DIR, "val")  # V(D, G) on held-out data, not a train batch
    lectures = LectureSnapshots(
        paths.LECTURES_DIR, inputs.meta, held_out=val.data,
        held_out_labels=inputs.held_out_labels(val),
        seed=params.seed + 4, defer_commit=True,
    )  # fmt: skip
    with Progress(*progress_columns(), disable=not dist.is_main) as progress:
        # The monitor and the lectures first: they add their measures to the row the CSV and
        # MLflow loggers write.
        callbacks: list[Callback] = [monitor] if monitor is not None else []
        callbacks += [lectures, grids, history, health, ProgressBar(progress)]
        callbacks += [MlflowLogger(grids)] if dist.is_main else []
        try:
            result = fit(
                config, inputs.data, inputs.labels, spec=inputs.spec, seed=params.seed,
                checkpoint_dir=paths.CHECKPOINT_DIR, callbacks=callbacks,
                dataset_hash=inputs.meta.get("content_hash"), dist=dist,
            )  # fmt: skip
        except (NonFiniteLossError, ValueError) as err:
            raise StageError(f"train: {err}") from None
    return result, health.warnings, (history, grids, lectures)


if __name__ == "__main__":
    main()
