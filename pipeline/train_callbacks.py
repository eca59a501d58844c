"""The train stage's callbacks: the progress bar on the terminal, per-step metrics and sample
grids into the MLflow run."""

from __future__ import annotations

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

from ganforge.training import Callback, SampleGrid

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
