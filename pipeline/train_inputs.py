"""What the train stage reads before it trains: the resolved recipe, the prepared data, the
generator spec, and the validation monitor that fits the data (`monitor_for`)."""

from __future__ import annotations

import logging
from typing import Any

from ganforge.classifier import NoClassifierError, load_classifier
from ganforge.data import DataError, load_meta, load_split
from ganforge.recipe import DataFacts
from ganforge.training import QualityMonitor, make_spec
from ganforge.training.quality import monitor_for, needs_feature_net
from pipeline import paths
from pipeline.stage import StageError, require_upstream


def read_inputs(params: Any) -> tuple[Any, dict[str, Any], Any, Any, Any]:
    """(recipe, meta, training data, labels or None, generator spec) from data/prepared."""
    require_upstream(paths.PREPARED_DIR)
    try:
        meta = load_meta(paths.PREPARED_DIR)
        recipe = params.train.resolve(DataFacts.from_meta(meta))
        logging.getLogger("ganforge").info("train: %s", recipe.summary())
        train = load_split(paths.PREPARED_DIR, "train")
        labels = train.labels if len(train) and int(train.labels.min()) >= 0 else None
        classes = meta.get("classes") or ()
        spec = make_spec(
            recipe.config, train.data.shape[1:], meta.get("num_classes") or 0, classes, labels
        )
    except (DataError, ValueError) as err:
        raise StageError(f"train: {err}") from None
    return recipe, meta, train.data, labels, spec


def quality_monitor(
    params: Any, config: Any, meta: dict[str, Any], labels: Any, device: Any
) -> QualityMonitor | None:
    """The validation monitor for this data (`monitor_for`), or None, said why: images need
    models/classifier.pt (the classifier stage's); without it the run keeps its last G."""
    if config.fid_every == 0:
        return no_monitor("train.fid_every is 0")
    classifier = val = None
    try:
        if needs_feature_net(meta):
            if not paths.CLASSIFIER_PATH.exists():
                return no_monitor(
                    f"{paths.CLASSIFIER_PATH} is missing (run `dvc repro classifier` first)"
                )
            classifier, _ = load_classifier(paths.CLASSIFIER_PATH)
            val = load_split(paths.PREPARED_DIR, "val").data
        return monitor_for(
            meta, classifier, val, every=config.fid_every, num_samples=config.fid_samples,
            keep=config.keep, seed=params.seed, labels=labels, device=device,
        )  # fmt: skip
    except NoClassifierError as err:
        return no_monitor(str(err))
    except (DataError, ValueError) as err:
        raise StageError(f"train: {err}") from None


def no_monitor(why: str) -> QualityMonitor | None:
    logging.getLogger("ganforge").warning(
        "train: no validation score during training (%s): keeping the last G", why
    )
    return None
