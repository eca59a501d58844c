"""Stage `evaluate`: score the trained generator against the held-out test split.

models/generator.pt + models/classifier.pt + data/prepared -> metrics/eval.json,
plots/eval_samples.png, plots/class_histogram.csv; all of it also into the generator's MLflow run.
"""

from __future__ import annotations

from typing import Any

from ganforge.classifier import NoClassifierError, load_classifier
from ganforge.data import DataError, load_meta, load_split
from ganforge.device import resolve_device
from ganforge.metrics import EvalResult, build_feature_net, evaluate_images, evaluate_toy
from pipeline.console import summary
from pipeline.eval_record import record
from pipeline.params import load_params
from pipeline.paths import CLASSIFIER_PATH, GENERATOR_PATH, PREPARED_DIR
from pipeline.stage import (
    StageError,
    read_discriminator,
    read_generator,
    require_upstream,
    setup_logging,
    stage_main,
)
from pipeline.tracking import check_tracking_server, tracking_uri


@stage_main("evaluate")
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
        disc = read_discriminator(GENERATOR_PATH, device)
        result = evaluate_toy(generator, spec, meta, pair["test"], cfg, disc, params.seed, device)
    else:
        classifier, classifier_info = _classifier(cfg.backend)
        result = _score_images(generator, spec, meta, pair, classifier, params, device)
    result.metrics["weights"] = extra.get("weights")
    result.metrics["dataset"] = meta.get("dataset")
    log.info("%s", summary(result.metrics))  # every figure: reports/eval.json and MLflow
    record(result, meta, classifier_info, params)


def _score_images(
    generator: Any, spec: Any, meta: dict[str, Any], pair: dict[str, Any], classifier: Any,
    params: Any, device: Any,
) -> EvalResult:  # fmt: skip
    """`evaluate_images` on the feature net of evaluate.backend; bad settings as one line."""
    cfg = params.evaluate
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
        return evaluate_images(
            generator, spec, net.to(device), pair["train"], pair["test"], cfg,
            val=pair["val"], classifier=_judge(classifier),
            class_names=list(meta.get("classes") or []), seed=params.seed, device=device,
        )  # fmt: skip
    except ValueError as err:  # e.g. num_samples too small for a full-rank covariance
        raise StageError(f"evaluate: {err}") from None


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


if __name__ == "__main__":
    main()
