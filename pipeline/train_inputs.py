"""What the train stage reads before it trains: the resolved recipe, the prepared data and the
labels it trains with, the generator spec, and the validation monitor that fits the data
(`monitor_for`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ganforge.classifier import NoClassifierError, load_classifier
from ganforge.data import DataError, load_meta, load_split
from ganforge.recipe import DataFacts
from ganforge.training import QualityMonitor, make_spec
from ganforge.training.clusters import Clusters, training_labels
from ganforge.training.quality import monitor_for, needs_feature_net
from pipeline import paths
from pipeline.stage import StageError, require_upstream


@dataclass(frozen=True)
class TrainInputs:
    """What the train stage trains on: the resolved recipe, data/prepared's meta, the training
    data, the labels G and D are trained with (the data's, or their k-means `clusters` with
    train.clusters), the data's own labels (None when unlabelled) and the generator spec."""

    recipe: Any
    meta: dict[str, Any]
    data: Any
    labels: Any
    data_labels: Any
    spec: Any
    clusters: Clusters | None = None

    def held_out_labels(self, split: Any) -> Any:
        """The labels of a held-out split as D reads them: the data's, or their clusters."""
        return self.clusters.assign(split.data) if self.clusters is not None else split.labels


def read_inputs(params: Any) -> TrainInputs:
    """The train stage's inputs (`TrainInputs`) from data/prepared and params.yaml."""
    require_upstream(paths.PREPARED_DIR)
    log = logging.getLogger("ganforge")
    try:
        meta = load_meta(paths.PREPARED_DIR)
        recipe = params.train.resolve(DataFacts.from_meta(meta))
        log.info("train: %s", recipe.summary())
        train = load_split(paths.PREPARED_DIR, "train")
        data_labels = train.labels if len(train) and int(train.labels.min()) >= 0 else None
        start = time.perf_counter()
        used = training_labels(
            recipe.config.clusters, train.data, data_labels, meta.get("num_classes") or 0,
            meta.get("classes") or (), params.seed,
        )  # fmt: skip
        if used.clusters is not None:
            log.info(
                "train: D reads %d k-means clusters of the training data (%.1f s)",
                used.num_classes, time.perf_counter() - start,
            )  # fmt: skip
        spec = make_spec(
            recipe.config, train.data.shape[1:], used.num_classes, used.class_names, used.labels
        )
    except (DataError, ValueError) as err:
        raise StageError(f"train: {err}") from None
    return TrainInputs(recipe, meta, train.data, used.labels, data_labels, spec, used.clusters)


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
