"""Stage `evaluate`: score the trained generator against the held-out test split.

models/generator.pt + models/classifier.pt + data/prepared -> metrics/eval.json,
plots/eval_samples.png, plots/class_histogram.csv; all of it also into the generator's MLflow run.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ganforge.classifier import NoClassifierError, load_classifier
from ganforge.data import DataError, load_meta, load_split
from ganforge.device import resolve_device
from ganforge.io import atomic_path
from ganforge.metrics import EvalResult, build_feature_net, evaluate_images, evaluate_toy
from ganforge.models import load_discriminator
from ganforge.plots import plot_points
from pipeline.common import (
    CLASSIFIER_PATH,
    GENERATOR_PATH,
    METRICS_DIR,
    PLOTS_DIR,
    PREPARED_DIR,
    REPORTS_DIR,
    StageError,
    check_tracking_server,
    log_params,
    mlflow_run,
    read_generator,
    require_upstream,
    setup_logging,
    staged_outputs,
    tracking_uri,
    write_metrics,
)
from pipeline.params import flatten, load_params
from pipeline.registry import settle

METRICS_FILE = METRICS_DIR / "eval.json"
REPORT_FILE = REPORTS_DIR / "eval.json"
# metrics/eval.json: the scores that compare across runs (those that apply to the data set);
# sample counts, timings, spreads and settings go to reports/eval.json only.
HEADLINE = (
    "fid", "fid_floor", "fid_over_floor", "kid_mean", "is_mean", "precision", "recall",
    "class_kl", "classes_covered", "conditional_accuracy", "parzen_ll",
    "modes_covered", "high_quality_fraction", "jsd", "v_value_gap",
)  # fmt: skip
SAMPLES_PNG = PLOTS_DIR / "eval_samples.png"
HISTOGRAM_CSV = PLOTS_DIR / "class_histogram.csv"


def main() -> None:
    log = setup_logging()
    params = load_params()
    cfg = params.evaluate
    require_upstream(GENERATOR_PATH, PREPARED_DIR)
    check_tracking_server(tracking_uri())  # before minutes of scoring, not after
    try:
        device = resolve_device(cfg.device)
        meta = load_meta(PREPARED_DIR)
        splits = {s: load_split(PREPARED_DIR, s) for s in ("train", "val", "test")}
    except (ValueError, DataError) as err:
        raise StageError(f"evaluate: {err}") from None
    generator, spec, extra = read_generator(GENERATOR_PATH, use_ema=cfg.use_ema, device=device)
    pair = {s: (split.data, split.labels) for s, split in splits.items()}

    classifier_info: dict[str, Any] = {}
    if splits["test"].kind == "points":
        disc = load_discriminator(GENERATOR_PATH, device)
        result = evaluate_toy(generator, spec, meta, pair["test"], cfg, disc, params.seed, device)
    else:
        classifier, classifier_info = _classifier(cfg.backend)
        try:
            net = build_feature_net(cfg.backend, classifier, cfg.inception_weights)
        except (FileNotFoundError, ModuleNotFoundError) as err:
            raise StageError(f"evaluate.backend = inception: {err}") from None
        except Exception as err:  # a damaged or foreign weights file fails deep in torch.load
            raise StageError(
                f"evaluate.inception_weights = {cfg.inception_weights}: not a readable "
                f"InceptionV3 weights file ({type(err).__name__}: {str(err)[:120]}): fetch "
                "pt_inception-2015-12-05-6726825d.pth again, or use evaluate.backend: classifier"
            ) from None
        try:
            result = evaluate_images(
                generator, spec, net.to(device), pair["train"], pair["test"], cfg,
                val=pair["val"], classifier=_judge(classifier),
                class_names=list(meta.get("classes") or []), seed=params.seed, device=device,
            )  # fmt: skip
        except ValueError as err:  # e.g. num_samples too small for a full-rank covariance
            raise StageError(f"evaluate: {err}") from None
    result.metrics["weights"] = extra.get("weights")
    result.metrics["dataset"] = meta.get("dataset")
    log.info("%s", summary(result.metrics))  # every figure: reports/eval.json and MLflow

    # The outs are written last: a failure up to the end of the MLflow step leaves them as
    # they were (staged files are moved into place only when the whole block succeeds).
    with (
        staged_outputs(METRICS_FILE, REPORT_FILE, HISTOGRAM_CSV, SAMPLES_PNG) as staged,
        mlflow_run("evaluate", params.mlflow.experiment) as run,
    ):
        write_metrics("eval", result.metrics, HEADLINE, staged)
        _write_histogram(result, staged[HISTOGRAM_CSV])
        _write_samples(result, meta, staged[SAMPLES_PNG])
        import mlflow

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
        for path in (REPORT_FILE, SAMPLES_PNG, HISTOGRAM_CSV):
            mlflow.log_artifact(str(staged[path]), artifact_path="evaluate")
        if params.mlflow.registered_model:  # the champion policy, when export came first
            settle(params.mlflow.registered_model, run.info.run_id)


def _judge(classifier: Any) -> Any:
    """The classifier that judges classes: none when it learnt rotations (unlabelled data)."""
    return classifier if classifier is not None and classifier.task == "classes" else None


def _classifier(backend: str) -> tuple[Any, dict[str, Any]]:
    """The domain classifier and what it was saved with (its config, its test accuracy).

    Required by the classifier backend, optional for inception (class coverage uses it).
    """
    if backend == "classifier":
        require_upstream(CLASSIFIER_PATH)
    if not CLASSIFIER_PATH.exists():
        return None, {}
    try:
        return load_classifier(CLASSIFIER_PATH)
    except NoClassifierError as err:
        if backend == "classifier":
            raise StageError(f"evaluate.backend = classifier: {err}") from None
        return None, {}


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def summary(m: dict[str, Any]) -> str:
    """The headline scores in one line, each number in one format (3 decimals)."""

    def num(key: str) -> str:
        return f"{float(m[key]):.3f}"

    parts = []
    if isinstance(m.get("fid"), int | float):
        floor = ""
        if isinstance(m.get("fid_floor"), int | float) and isinstance(
            m.get("fid_over_floor"), int | float
        ):
            floor = f" (floor {num('fid_floor')}, {float(m['fid_over_floor']):.2f}×)"
        parts.append(f"FID {num('fid')}{floor}")
    for key, name in (("precision", "precision"), ("recall", "recall")):
        if isinstance(m.get(key), int | float):
            parts.append(f"{name} {num(key)}")
    if m.get("num_classes"):
        parts.append(f"classes {m.get('classes_covered')}/{m['num_classes']}")
    if m.get("num_modes"):
        parts.append(f"modes {m.get('modes_covered')}/{m['num_modes']}")
    for key, name in (("high_quality_fraction", "high quality"), ("jsd", "JSD")):
        if isinstance(m.get(key), int | float):
            parts.append(f"{name} {num(key)}")
    return "evaluate: " + ", ".join(parts)


def _write_histogram(result: EvalResult, path: Path = HISTOGRAM_CSV) -> None:
    """plots/class_histogram.csv (class, generated, real): classes, ring modes or 1-D bins."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["class", "generated", "real"])
        writer.writeheader()
        writer.writerows(result.class_rows)


def _write_samples(result: EvalResult, meta: dict[str, Any], path: Path = SAMPLES_PNG) -> None:
    """plots/eval_samples.png: an image grid, or a scatter / histogram of toy samples."""
    if result.real_points is None:
        from torchvision.utils import make_grid, save_image

        grid = make_grid(result.samples.float() / 255.0, nrow=8, padding=2)
        with atomic_path(path) as tmp:
            save_image(grid, tmp, format="png")
        return
    title = f"{meta.get('dataset')}: generated vs real"
    plot_points(result.samples[:5000], path, title, real=result.real_points, size=5)


if __name__ == "__main__":
    main()
