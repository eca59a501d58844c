"""Stage `classifier`: train the domain classifier (the offline FID/KID/IS feature net).

data/prepared -> models/classifier.pt + metrics/classifier.json. Unlabelled image data (CelebA,
an image folder without classes) and toy data need no classifier: the stage then writes a file
that says why, a note in the metrics, and evaluate must use backend inception for images.
"""

from __future__ import annotations

import logging

from ganforge.classifier import accuracy, save_classifier, save_placeholder, train_classifier
from ganforge.data import DataError, load_meta, load_split
from ganforge.device import resolve_device
from pipeline.common import (
    CLASSIFIER_PATH,
    PREPARED_DIR,
    StageError,
    require_upstream,
    setup_logging,
    write_metrics,
)
from pipeline.params import load_params


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
    num_classes = int(meta.get("num_classes") or 0)
    reason = None
    if train.kind != "images":
        reason = (
            f"{meta.get('dataset')} holds points, not images: its evaluation needs no classifier"
        )
    elif num_classes < 2 or bool((train.labels < 0).any()):
        reason = (
            f"{meta.get('dataset')} has no class labels, so no classifier can be trained; "
            "evaluate needs evaluate.backend: inception"
        )
    if reason is not None:
        log.warning("classifier: %s", reason)
        save_placeholder(CLASSIFIER_PATH, reason)
        write_metrics("classifier", {"trained": False, "note": reason}, ("trained",))
        return
    try:
        device = resolve_device(cfg.device)
    except ValueError as err:
        raise StageError(f"classifier.device: {err}") from None
    result = train_classifier(
        train.data, train.labels, num_classes, cfg, val.data, val.labels, params.seed, device
    )
    test_acc = accuracy(result.model, test.data, test.labels, device=device)
    metrics = {
        "trained": True,
        "test_accuracy": test_acc,
        "val_accuracy": result.val_accuracy,
        "epochs": cfg.epochs,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2),
        "feature_dim": cfg.feature_dim,
        "num_classes": num_classes,
        "test_samples": len(test),
    }
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
        test_acc,
        result.val_accuracy if result.val_accuracy is not None else float("nan"),
        result.best_epoch,
        cfg.epochs,
        result.seconds,
    )


if __name__ == "__main__":
    main()
