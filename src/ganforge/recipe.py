"""`auto`: the training recipe derived from the data and the model (like stylegan2-ada's --cfg).

One table, `RECIPES`, holds the recipes that bench/quality.py measured; `resolve_recipe` picks
one from what `prepare` recorded about the data (`DataFacts`) and from the chosen model and
label use, fills every key the user left at "auto" (or left out) from it, and says why. Keys
the user set win. Length is counted in images shown to D (`kimg`), so a recipe means the same
on 1 000 or 60 000 training items; `training_steps` turns it into generator steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ganforge.config import Labels, TrainConfig, plain_errors

AUTO = "auto"


@dataclass(frozen=True)
class DataFacts:
    """What the recipe needs to know of the training data (from prepare's meta.json)."""

    sample_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for points
    num_train: int
    num_classes: int = 0  # 0 or 1: unlabelled

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> DataFacts:
        """Facts from a prepared store's meta.json (`ganforge.data.load_meta`)."""
        splits = meta.get("splits") or {}
        return cls(
            sample_shape=tuple(int(s) for s in meta["sample_shape"]),
            num_train=int(splits.get("train", 0)),
            num_classes=int(meta.get("num_classes") or 0),
        )

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

    @property
    def labelled(self) -> bool:
        return self.num_classes >= 2

    def describe(self) -> str:
        shape = "×".join(str(s) for s in self.sample_shape)
        kind = f"{shape} images" if self.is_image else f"{self.sample_shape[0]}-D points"
        labels = f"{self.num_classes} classes" if self.labelled else "no labels"
        return f"{self.num_train} {kind}, {labels}"


# The measured recipes, by name: every value a recipe sets. Each row is the configuration a
# bench/quality.py row trains with one key changed from params.yaml (its name in the comment);
# its figures are in bench/results/ and the README's generated table. Budgets are the measured
# lengths in thousands of images shown to D (steps × batch / 1000).
# digits_dcgan: DCGAN with DiffAugment, lazy R1 and EMA; the widths halved from Radford et al.'s
# to fit a CPU; the learning rate doubled with the batch.
_DCGAN: dict[str, Any] = {
    "nz": 100,
    "ngf": 32,
    "ndf": 32,
    "optimizer": "adam",
    "lr_g": 4e-4,
    "lr_d": 4e-4,
    "batch_size": 128,
    "kimg": 2160 * 128 / 1000,
    "ema_decay": 0.995,
    "augment": ["translation", "cutout"],
    "r1_gamma": 0.1,
    "r1_every": 8,
    "mode_seeking": 0.0,
    "clusters": 0,
    "log_every": 10,
}
RECIPES: dict[str, dict[str, Any]] = {
    "dcgan": _DCGAN,
    # digits_label_free: without labels, D reads k-means clusters of the training images in
    # their place (`ganforge.training.clusters`), ten as measured on the digits: a plain
    # unconditional DCGAN spread its samples between the classes (precision below 0.7 even at
    # three times the length, the digits_label_free_3x rows); the clustered one meets the
    # label-free targets at the labelled recipe's length (the digits_label_free rows).
    "dcgan_label_free": {**_DCGAN, "clusters": 10},
    # mnist: on a few thousand labelled 28 px digits the halved widths underfit (bench/quality.py
    # mnist_467kimg row); Radford et al.'s widths and learning rate, with the longer EMA average
    # that steadied the wider pair's validation FID in the screen, do better at the digits'
    # length, which beats a length cut to fit 6 minutes on 2 cores (mnist_192kimg row).
    "dcgan_wide": {**_DCGAN, "ngf": 64, "ndf": 64, "lr_g": 2e-4, "lr_d": 2e-4, "ema_decay": 0.999},
    # digits_mlp: Goodfellow et al.'s MNIST nets (G 1200-1200, D maxout 240 x 5, dropout 0.5
    # hidden / 0.2 input); without DiffAugment (it held the MLP to a few classes), stronger R1.
    "mlp_images": {
        "nz": 100,
        "ngf": 1200,
        "ndf": 240,
        "mlp_layers": 2,
        "maxout_pieces": 5,
        "dropout": 0.5,
        "input_dropout": 0.2,
        "optimizer": "adam",
        "lr_g": 8e-4,
        "lr_d": 8e-4,
        "batch_size": 128,
        "kimg": 4050 * 128 / 1000,
        "ema_decay": 0.999,
        "augment": [],
        "r1_gamma": 3.0,
        "r1_every": 8,
        "mode_seeking": 0.0,
        "clusters": 0,
        "log_every": 10,
    },
    # ring_2d, grid_2d: the mode-collapse benchmarks' nets (3 x 128, as PacGAN / VEEGAN), a 2-d
    # latent, R1 on real points (without it the grid's narrow modes do not converge on every
    # seed). Toy steps are cheap, so logs are sparse (the metric writes dominated otherwise).
    "mlp_points_2d": {
        "nz": 2,
        "ngf": 128,
        "ndf": 128,
        "mlp_layers": 3,
        "maxout_pieces": 0,
        "dropout": 0.0,
        "input_dropout": 0.0,
        "optimizer": "adam",
        "lr_g": 1e-3,
        "lr_d": 1e-3,
        "batch_size": 256,
        "kimg": 8100 * 256 / 1000,
        "ema_decay": 0.999,
        "augment": [],
        "r1_gamma": 0.1,
        "r1_every": 4,
        "mode_seeking": 0.0,
        "clusters": 0,
        "log_every": 100,
    },
    # gaussian_1d: Goodfellow et al.'s MLP pair, narrow, on the 1-D theory example.
    "mlp_points_1d": {
        "nz": 100,
        "ngf": 32,
        "ndf": 32,
        "mlp_layers": 2,
        "maxout_pieces": 5,
        "dropout": 0.5,
        "input_dropout": 0.0,
        "optimizer": "adam",
        "lr_g": 4e-4,
        "lr_d": 4e-4,
        "batch_size": 128,
        "kimg": 17440 * 128 / 1000,
        "ema_decay": 0.995,
        "augment": [],
        "r1_gamma": 0.1,
        "r1_every": 8,
        "mode_seeking": 0.0,
        "clusters": 0,
        "log_every": 10,
    },
}
# Keys `auto` may stand for: the model, the label use and every key of a recipe.
RECIPE_KEYS: frozenset[str] = frozenset({"model", "labels"}).union(*RECIPES.values())
# DiffAugment's colour transform (brightness, saturation, contrast) only means something in RGB.
RGB_AUGMENT = ["color", "translation", "cutout"]
# Labelled training sets at least this large get the wide DCGAN: between the sizes bench/quality.py
# measured (the digits' ~1 300 training images, where the halved nets are the good and fast
# recipe, and the 3 600 of its MNIST row, where they underfit).
WIDE_MIN_TRAIN = 3000
# MSGAN's term needs pairs of samples that share a class: on when G knows the class (or cluster).
LABELLED_MODE_SEEKING = 0.2


@dataclass(frozen=True)
class Recipe:
    """A resolved training configuration and, for each key `auto` chose, the reason."""

    name: str
    config: TrainConfig
    reasons: dict[str, str]
    why: str = ""  # why this recipe fits the data and the model

    def summary(self) -> str:
        """One line: the recipe, why it was picked, and the keys it chose."""
        chosen = ", ".join(f"{k} {_show(getattr(self.config, k))}" for k in sorted(self.reasons))
        head = f"recipe {self.name} ({self.why})" if self.why else f"recipe {self.name}"
        return f"{head}: {chosen}" if chosen else f"{head}: all keys set"


def resolve_recipe(request: Mapping[str, Any], facts: DataFacts) -> Recipe:
    """The training configuration `request` asks for on data described by `facts`.

    `request` maps TrainConfig keys to values; "auto", or a recipe key left out, is filled from
    the recipe that fits the data and the model. Raises ValueError (one sentence per problem)
    when the result is not a valid configuration.
    """
    wanted = {k: v for k, v in request.items() if v != AUTO}
    reasons: dict[str, str] = {}

    def auto(key: str) -> bool:
        return key in RECIPE_KEYS and key not in wanted

    model = wanted.get("model", AUTO)
    if model == AUTO:
        model = "dcgan" if facts.is_image else "mlp"
        reasons["model"] = "dcgan for images" if facts.is_image else "mlp for points"
    labels = wanted.get("labels", AUTO)
    if labels == AUTO and wanted.get("clusters"):
        labels = "none"
        reasons["labels"] = f"clusters = {wanted['clusters']}: D reads clusters, not labels"
    elif labels == AUTO:
        labels, reasons["labels"] = auto_labels(facts, model, wanted.get("pack", 1))
    name, why = _recipe_name(facts, model, labels)
    chosen: dict[str, Any] = {"model": model, "labels": labels}
    for key, value in RECIPES[name].items():
        if auto(key):
            chosen[key] = value
            reasons[key] = f"recipe {name}"
    if auto("augment") and facts.is_image and facts.sample_shape[0] == 3:
        if chosen.get("augment"):
            chosen["augment"] = list(RGB_AUGMENT)
            reasons["augment"] = f"recipe {name}, with DiffAugment's colour for RGB"
    if auto("clusters") and chosen.get("clusters") and wanted.get("pack", 1) > 1:
        chosen["clusters"] = 0
        reasons["clusters"] = "pack > 1: PacGAN's D is unconditional"
    clusters = chosen["clusters"] if "clusters" in chosen else wanted.get("clusters", 0)
    # what G knows of each sample: its class, its cluster, or nothing
    if labels in ("conditional", "latent"):
        knows, group = f"labels: {labels}", "class"
    else:
        knows, group = ("clusters", "cluster") if clusters else ("", "")
    if auto("mode_seeking") and facts.is_image and knows:
        chosen["mode_seeking"] = LABELLED_MODE_SEEKING
        reasons["mode_seeking"] = f"{knows}: samples of one {group} kept apart (MSGAN)"
    try:
        config = TrainConfig.model_validate({**wanted, **chosen})
    except ValidationError as err:
        raise ValueError(plain_errors(err)) from None
    return Recipe(name, config, reasons, why)


def auto_labels(facts: DataFacts, model: str, pack: int = 1) -> tuple[Labels, str]:
    """What `labels: auto` means on these data with this model, and why."""
    if not facts.labelled:
        return "none", "the data have no class labels"
    if not facts.is_image:
        return "none", "toy points: their mode ids are not classes to generate"
    if model == "mlp":
        return "none", "mlp: Goodfellow et al.'s unconditional GAN (its measured recipe)"
    if pack > 1:
        return "none", "pack > 1: PacGAN's D is unconditional"
    return "latent", "labelled images: D reads the label, G draws its class from z"


def _recipe_name(facts: DataFacts, model: str, labels: str) -> tuple[str, str]:
    """The recipe of RECIPES for these data and this model, and why."""
    if model == "dcgan":
        if labels == "none":
            return "dcgan_label_free", "dcgan without labels"
        if facts.num_train >= WIDE_MIN_TRAIN:
            why = f"{facts.num_train} training images, at least {WIDE_MIN_TRAIN}"
            return "dcgan_wide", f"dcgan with labels, {why}"
        why = f"{facts.num_train} training images, fewer than {WIDE_MIN_TRAIN}"
        return "dcgan", f"dcgan with labels, {why}"
    if facts.is_image:
        return "mlp_images", "mlp on images"
    if facts.sample_shape == (1,):
        return "mlp_points_1d", "mlp on 1-D points"
    return "mlp_points_2d", "mlp on 2-D points"


def training_steps(
    config: TrainConfig, batches_per_epoch: int, world_size: int = 1
) -> tuple[int, str]:
    """Generator steps of a run and the budget they come from: max_steps, epochs or kimg.

    `max_steps` wins over `epochs`, which wins over `kimg`. A kimg budget counts the real images
    D is shown over all processes: `d_steps` batches of `batch_size` per step and process.
    """
    if config.max_steps:
        return config.max_steps, f"max_steps {config.max_steps}"
    if config.epochs:
        steps = math.ceil(config.epochs * batches_per_epoch / config.d_steps)
        return steps, f"epochs {config.epochs} ({batches_per_epoch} batches each)"
    per_step = config.batch_size * config.d_steps * world_size
    steps = max(1, math.ceil(round(config.kimg * 1000 / per_step, 6)))
    return steps, f"kimg {config.kimg:g} ({per_step} images shown to D a step)"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
