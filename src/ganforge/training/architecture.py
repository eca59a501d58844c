"""The generator a training config asks for on given data: TrainConfig + data -> GeneratorSpec."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import ValidationError

from ganforge.config import ArchOptions, TrainConfig, plain_errors
from ganforge.models import GeneratorSpec
from ganforge.models.latent_class import class_prior
from ganforge.models.spec import resolve_arch
from ganforge.recipe import DataFacts, auto_labels


def make_spec(
    config: TrainConfig,
    sample_shape: Sequence[int],
    num_classes: int = 0,
    class_names: Sequence[str] = (),
    labels: torch.Tensor | None = None,
) -> GeneratorSpec:
    """The architecture `config` asks for, on data of `sample_shape` with `num_classes`.

    `labels` (the training labels) give a latent-class generator its class prior; without
    them `labels: auto` means none. With `config.clusters`, `labels` are the training data's
    clusters (`Clusters.labels`), and `num_classes` and `class_names` theirs: G draws its
    cluster from z as a latent class.
    """
    has_labels = (
        num_classes >= 2 and labels is not None and labels.numel() > 0 and bool((labels >= 0).all())
    )
    shape = tuple(int(s) for s in sample_shape)
    arch_name = resolve_arch(config.model, shape)
    use = config.labels
    if config.clusters:
        if num_classes != config.clusters or labels is None or len(labels) == 0:
            raise ValueError(
                f"train.clusters = {config.clusters}: pass the training data's clusters "
                "(ganforge.training.clusters.Clusters) as the labels"
            )
        use = "latent"
    elif use == "auto":
        use, _ = auto_labels(
            DataFacts(shape, 0, num_classes if has_labels else 0), arch_name, config.pack
        )
    if use == "conditional" and num_classes < 2:
        raise ValueError(
            "train.labels is conditional but the data have no class labels: set train.labels: none"
        )
    if use == "latent" and not has_labels:
        raise ValueError(
            "train.labels is latent but the data have no class labels: "
            "set train.labels: auto or none"
        )
    labelled = use in ("conditional", "latent")
    prior = class_prior(labels, num_classes) if use == "latent" and labels is not None else ()
    arch = config.model_dump(include=set(ArchOptions.model_fields))
    try:
        return GeneratorSpec(
            **arch,
            arch=arch_name,
            sample_shape=shape,
            num_classes=num_classes if labelled else 0,
            class_names=tuple(class_names) if labelled else (),
            class_prior=prior,
        )
    except ValidationError as err:
        raise ValueError(plain_errors(err)) from None
