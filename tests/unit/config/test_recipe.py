"""`auto`: each branch of the recipe, explicit values winning, and the kimg budget."""

from __future__ import annotations

import pytest

from ganforge.config import TrainConfig
from ganforge.recipe import (
    RECIPE_KEYS,
    RECIPES,
    WIDE_MIN_TRAIN,
    DataFacts,
    resolve_recipe,
    training_steps,
)

DIGITS = DataFacts((1, 32, 32), 1257, 10)
MNIST_5K = DataFacts((1, 32, 32), 3600, 10)
RGB_FOLDER = DataFacts((3, 64, 64), 1800, 0)
RING = DataFacts((2,), 14000, 8)
LINE = DataFacts((1,), 14000, 0)


def test_every_recipe_is_a_valid_configuration_of_the_recipe_keys() -> None:
    for name, values in RECIPES.items():
        assert set(values) <= RECIPE_KEYS, name
        TrainConfig.model_validate(values)  # raises on a bad value


@pytest.mark.parametrize(
    ("facts", "request_", "recipe", "model", "labels"),
    [
        (DIGITS, {}, "dcgan", "dcgan", "latent"),
        (DIGITS, {"model": "mlp"}, "mlp_images", "mlp", "none"),
        (DIGITS, {"labels": "none"}, "dcgan_label_free", "dcgan", "none"),
        (DIGITS, {"labels": "conditional"}, "dcgan", "dcgan", "conditional"),
        (DIGITS, {"pack": 2}, "dcgan_label_free", "dcgan", "none"),
        (RGB_FOLDER, {}, "dcgan_label_free", "dcgan", "none"),
        (MNIST_5K, {}, "dcgan_wide", "dcgan", "latent"),
        (MNIST_5K, {"labels": "conditional"}, "dcgan_wide", "dcgan", "conditional"),
        (MNIST_5K, {"labels": "none"}, "dcgan_label_free", "dcgan", "none"),
        (MNIST_5K, {"model": "mlp"}, "mlp_images", "mlp", "none"),
        (RING, {}, "mlp_points_2d", "mlp", "none"),
        (LINE, {}, "mlp_points_1d", "mlp", "none"),
    ],
)
def test_auto_picks_the_recipe_of_the_data_and_the_model(
    facts: DataFacts, request_: dict, recipe: str, model: str, labels: str
) -> None:
    resolved = resolve_recipe({k: "auto" for k in RECIPE_KEYS} | request_, facts)
    assert (resolved.name, resolved.config.model, resolved.config.labels) == (
        recipe,
        model,
        labels,
    )
    for key, value in RECIPES[recipe].items():
        if key not in ("augment", "mode_seeking", "clusters"):
            assert getattr(resolved.config, key) == value, key
    # without labels the DCGAN reads clusters, unless PacGAN's unconditional D is asked for
    clustered = recipe == "dcgan_label_free" and "pack" not in request_
    assert resolved.config.clusters == (RECIPES[recipe]["clusters"] if clustered else 0)
    # every key auto chose says why; the keys the user set are not in the reasons
    assert set(resolved.reasons) >= set(RECIPES[recipe]) - {"augment"} - set(request_)
    assert not set(request_) & set(resolved.reasons)
    assert all(resolved.reasons.values())


def test_a_left_out_recipe_key_means_auto_and_a_set_one_wins() -> None:
    resolved = resolve_recipe({"ngf": 48, "lr_g": 1e-4}, DIGITS)
    assert resolved.config.ngf == 48 and resolved.config.lr_g == 1e-4
    assert resolved.config.ndf == RECIPES["dcgan"]["ndf"]
    assert "ngf" not in resolved.reasons and resolved.reasons["ndf"] == "recipe dcgan"


def test_mode_seeking_follows_the_label_use() -> None:
    assert resolve_recipe({}, DIGITS).config.mode_seeking > 0  # latent: classes to keep apart
    assert resolve_recipe({"labels": "conditional"}, DIGITS).config.mode_seeking > 0
    assert resolve_recipe({"labels": "none"}, DIGITS).config.mode_seeking > 0  # clusters
    assert resolve_recipe({"labels": "none", "clusters": 0}, DIGITS).config.mode_seeking == 0
    assert resolve_recipe({"model": "mlp"}, DIGITS).config.mode_seeking == 0
    assert (
        resolve_recipe({"labels": "latent", "mode_seeking": 0.0}, DIGITS).config.mode_seeking == 0
    )


def test_colour_augmentation_only_for_rgb_and_only_where_the_recipe_augments() -> None:
    assert "color" in resolve_recipe({}, RGB_FOLDER).config.augment
    assert "color" not in resolve_recipe({}, DIGITS).config.augment
    assert resolve_recipe({"model": "mlp"}, RGB_FOLDER).config.augment == []
    assert resolve_recipe({"augment": ["cutout"]}, RGB_FOLDER).config.augment == ["cutout"]


def test_an_impossible_combination_is_one_sentence() -> None:
    with pytest.raises(ValueError, match="batch_size = 100 is not a multiple of pack = 3"):
        resolve_recipe({"pack": 3, "batch_size": 100}, DIGITS)


def test_the_summary_names_the_recipe_and_what_it_chose() -> None:
    line = resolve_recipe({"ngf": 48}, DIGITS).summary()
    assert line.startswith(
        "recipe dcgan (dcgan with labels, 1257 training images, fewer than 3000): "
    )
    assert "ndf 32" in line and "ngf" not in line


def test_facts_come_from_prepare_s_meta() -> None:
    meta = {"sample_shape": [1, 32, 32], "splits": {"train": 1257}, "num_classes": 10}
    assert DataFacts.from_meta(meta) == DIGITS
    assert DataFacts.from_meta({"sample_shape": [2], "splits": {}, "num_classes": None}) == (
        DataFacts((2,), 0, 0)
    )
    assert "1257 1×32×32 images, 10 classes" == DIGITS.describe()


def test_kimg_counts_images_shown_to_d_whatever_the_data_size() -> None:
    cfg = TrainConfig(kimg=276.48, batch_size=128)
    # the same length on 1 257 digits (9 batches an epoch) and on 60 000 images (468)
    assert training_steps(cfg, 9) == training_steps(cfg, 468)
    steps, why = training_steps(cfg, 9)
    assert steps == 2160 and why.startswith("kimg 276.48")
    # k D steps per G step and every DDP process show D their batches too
    assert training_steps(cfg.model_copy(update={"d_steps": 2}), 9)[0] == 1080
    assert training_steps(cfg, 9, world_size=4)[0] == 540


def test_epochs_win_over_kimg_and_max_steps_over_both() -> None:
    cfg = TrainConfig(kimg=1000.0, epochs=240, batch_size=128)
    assert training_steps(cfg, 9) == (2160, "epochs 240 (9 batches each)")
    capped = cfg.model_copy(update={"max_steps": 5})
    assert training_steps(capped, 9) == (5, "max_steps 5")


def test_label_free_dcgan_reads_clusters_where_the_labelled_one_reads_labels() -> None:
    labelled, free = resolve_recipe({}, DIGITS), resolve_recipe({"labels": "none"}, DIGITS)
    assert free.name == "dcgan_label_free" and free.config.labels == "none"
    assert free.config.clusters >= 2 and labelled.config.clusters == 0
    # the nets, optimiser and length are the labelled recipe's: only the clusters differ
    differ = {k for k in RECIPES["dcgan"] if RECIPES["dcgan"][k] != RECIPES["dcgan_label_free"][k]}
    assert differ == {"clusters"}
    assert "cluster" in free.reasons["mode_seeking"]


def test_clusters_set_by_the_user_turn_auto_labels_off() -> None:
    resolved = resolve_recipe({"clusters": 20}, DIGITS)
    assert (resolved.name, resolved.config.labels, resolved.config.clusters) == (
        "dcgan_label_free",
        "none",
        20,
    )
    assert "clusters = 20" in resolved.reasons["labels"]
    with pytest.raises(ValueError, match="clusters = 20 conditions on k-means clusters"):
        resolve_recipe({"clusters": 20, "labels": "latent"}, DIGITS)
    with pytest.raises(ValueError, match="pack = 2 is implemented for unconditional"):
        resolve_recipe({"clusters": 20, "pack": 2}, DIGITS)
    with pytest.raises(ValueError, match="clusters = 1 conditions on nothing"):
        resolve_recipe({"clusters": 1}, DIGITS)


def test_the_wide_dcgan_starts_at_its_training_size_and_changes_nets_and_optimiser() -> None:
    assert resolve_recipe({}, DataFacts((1, 32, 32), WIDE_MIN_TRAIN - 1, 10)).name == "dcgan"
    at_size = resolve_recipe({}, DataFacts((1, 32, 32), WIDE_MIN_TRAIN, 10))
    assert at_size.name == "dcgan_wide" and f"at least {WIDE_MIN_TRAIN}" in at_size.why
    wide = resolve_recipe({}, MNIST_5K).config
    assert wide.ngf > RECIPES["dcgan"]["ngf"] and wide.ndf > RECIPES["dcgan"]["ndf"]
    differ = {k for k in RECIPES["dcgan"] if RECIPES["dcgan"][k] != RECIPES["dcgan_wide"][k]}
    assert differ == {"ngf", "ndf", "lr_g", "lr_d", "ema_decay"}
