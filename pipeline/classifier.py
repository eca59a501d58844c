"""Stage `classifier`: train the domain classifier (the offline FID/KID/IS feature net).

data/prepared -> models/classifier.pt + metrics/classifier.json. Labelled images train it on
their classes; unlabelled images (CelebA, an image folder without classes) on the rotation of
each image (`rotation_task`), whose features still judge FID offline. Toy data need no
classifier: the stage then writes a file that says why and a note in the metrics.
"""

from __future__ import annotations

import logging
from typing import Any

from ganforge.classifier import (
    ROTATIONS,
    accuracy,
    rotation_task,
    save_classifier,
    save_placeholder,
    train_classifier,
)
from ganforge.data import DataError, load_meta, load_split
from ganforge.device import resolve_device
from pipeline.console import EpochLine
from pipeline.params import load_params
from pipeline.paths import CLASSIFIER_PATH, PREPARED_DIR
from pipeline.stage import StageError, require_upstream, setup_logging, stage_main, write_metrics


@stage_main("classifier")
def main() -> None:
    log = setup_logging()
    params = load_params()
    cfg = params.classifier
    require_upstream(PREPARED_DIR)
    try:
        meta = load_meta(PREPARED_DIR)
        train, val, test = (
            load_split(PREPARED_DIR, s, mmap=False) for s in ("train", "val", "test")
        )
    except DataError as err:
        raise StageError(f"classifier: {err}") from None
    if train.kind != "images":
        reason = (
            f"{meta.get('dataset')} holds points, not images: its evaluation needs no classifier"
        )
        log.warning("classifier: %s", reason)
        save_placeholder(CLASSIFIER_PATH, reason)
        write_metrics("classifier", {"trained": False, "note": reason}, ("trained",))
        return
    try:
        device = resolve_device(cfg.device)
    except ValueError as err:
        raise StageError(f"classifier.device: {err}") from None
    task, num_classes, splits = _task(meta, train, val, test)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits
    epoch_lines = EpochLine(cfg.epochs)
    logging.getLogger("ganforge.classifier").addFilter(epoch_lines)
    try:
        result = train_classifier(
            train_x, train_y, num_classes, cfg, val_x, val_y, params.seed, device, task=task
        )
    finally:
        logging.getLogger("ganforge.classifier").removeFilter(epoch_lines)
    test_acc = accuracy(result.model, test_x, test_y, device=device)
    log.info(
        "classifier: test accuracy %.1f %% (epoch %d of %d kept, %.0f s)",
        100 * test_acc,
        result.best_epoch,
        cfg.epochs,
        result.seconds,
    )
    metrics = {
        "trained": True,
        "task": task,
        "test_accuracy": test_acc,
        "val_accuracy": result.val_accuracy,
        "epochs": cfg.epochs,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2),
        "feature_dim": cfg.feature_dim,
        "num_classes": num_classes,
        "test_samples": len(test),
    }
    _record(result, metrics, meta, params)


def _task(meta: dict[str, Any], *splits: Any) -> tuple[str, int, list[tuple[Any, Any]]]:
    """(task, number of classes, (images, targets) of each split): the data's classes when
    every image has one, else the rotation of each image in four rotations."""
    num_classes = int(meta.get("num_classes") or 0)
    if num_classes >= 2 and not bool((splits[0].labels < 0).any()):
        return "classes", num_classes, [(split.data, split.labels) for split in splits]
    logging.getLogger("ganforge").info(
        "classifier: %s has no class labels: trained on rotations", meta.get("dataset")
    )
    return "rotation", ROTATIONS, [rotation_task(split.data) for split in splits]


def _record(result: Any, metrics: dict[str, Any], meta: dict[str, Any], params: Any) -> None:
    """models/classifier.pt with what it was trained on and its scores; the metrics files."""
    cfg = params.classifier
    extra = {
        "config": cfg.model_dump(mode="json"),
        "seed": params.seed,
        "dataset": meta.get("dataset"),
        "content_hash": meta.get("content_hash"),
        "class_names": list(meta.get("classes") or []),
        "metrics": metrics,
    }
    save_classifier(CLASSIFIER_PATH, result.model, extra)
    write_metrics("classifier", metrics, ("test_accuracy",))
    logging.getLogger("ganforge").info(
        "classifier: test accuracy %.4f (val %.4f, best epoch %d of %d, %.1f s)",
        metrics["test_accuracy"],
        result.val_accuracy if result.val_accuracy is not None else float("nan"),
        result.best_epoch,
        cfg.epochs,
        result.seconds,
    )


if __name__ == "__main__":
    main()
