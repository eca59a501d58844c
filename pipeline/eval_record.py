"""What the evaluate stage records: metrics/eval.json, reports/eval.json, the class histogram
and the samples picture (staged, moved into place only when everything succeeded), and the
same scores, params and files in the generator's MLflow run."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ganforge.io import atomic_path
from ganforge.metrics import EvalResult
from ganforge.plots import plot_points
from pipeline.params import flatten
from pipeline.paths import EVAL_SAMPLES_PNG, HISTOGRAM_CSV, METRICS_DIR, REPORTS_DIR
from pipeline.registry import settle
from pipeline.stage import staged_outputs, write_metrics
from pipeline.tracking import log_params, mlflow_run

METRICS_FILE = METRICS_DIR / "eval.json"
REPORT_FILE = REPORTS_DIR / "eval.json"
# metrics/eval.json: the scores that compare across runs (those that apply to the data set);
# sample counts, timings, spreads and settings go to reports/eval.json only.
HEADLINE = (
    "fid", "fid_floor", "fid_over_floor", "kid_mean", "is_mean", "precision", "recall",
    "class_kl", "classes_covered", "conditional_accuracy", "parzen_ll",
    "modes_covered", "high_quality_fraction", "jsd", "v_value_gap",
)  # fmt: skip


def record(
    result: EvalResult, meta: dict[str, Any], classifier_info: dict[str, Any], params: Any
) -> None:
    """Write the outs and log them with the params (and the feature net's) into the run."""
    import mlflow

    cfg = params.evaluate
    # The outs are written last: a failure up to the end of the MLflow step leaves them as
    # they were (staged files are moved into place only when the whole block succeeds).
    with (
        staged_outputs(METRICS_FILE, REPORT_FILE, HISTOGRAM_CSV, EVAL_SAMPLES_PNG) as staged,
        mlflow_run("evaluate", params.mlflow.experiment) as run,
    ):
        write_metrics("eval", result.metrics, HEADLINE, staged)
        write_histogram(result, staged[HISTOGRAM_CSV])
        write_samples(result, meta, staged[EVAL_SAMPLES_PNG])
        log_params(flatten({"evaluate": cfg.model_dump(mode="json")}))
        if classifier_info.get("config"):  # the feature net the scores depend on
            log_params(flatten({"classifier": classifier_info["config"]}))
            accuracy = (classifier_info.get("metrics") or {}).get("test_accuracy")
            if accuracy is not None:
                mlflow.log_metric("classifier.test_accuracy", float(accuracy))
        numeric = {
            f"eval.{k}": float(v)
            for k, v in result.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        mlflow.log_metrics(numeric)
        for path in (REPORT_FILE, EVAL_SAMPLES_PNG, HISTOGRAM_CSV):
            mlflow.log_artifact(str(staged[path]), artifact_path="evaluate")
        if params.mlflow.registered_model:  # the champion policy, when export came first
            settle(params.mlflow.registered_model, run.info.run_id)


def write_histogram(result: EvalResult, path: Path = HISTOGRAM_CSV) -> None:
    """plots/class_histogram.csv (class, generated, real): classes, ring modes or 1-D bins."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["class", "generated", "real"])
        writer.writeheader()
        writer.writerows(result.class_rows)


def write_samples(result: EvalResult, meta: dict[str, Any], path: Path = EVAL_SAMPLES_PNG) -> None:
    """plots/eval_samples.png: an image grid, or a scatter / histogram of toy samples."""
    if result.real_points is None:
        from torchvision.utils import make_grid, save_image

        grid = make_grid(result.samples.float() / 255.0, nrow=8, padding=2)
        with atomic_path(path) as tmp:
            save_image(grid, tmp, format="png")
        return
    title = f"{meta.get('dataset')}: generated vs real"
    plot_points(result.samples[:5000], path, title, real=result.real_points, size=5)
