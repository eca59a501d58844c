"""params.yaml: every key has one home, a default and a check; dvc.yaml tracks every key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ganforge.config import TrainConfig
from ganforge.recipe import RECIPE_KEYS
from pipeline.params import Params, ParamsError, flatten, load_params

ROOT = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_repo_params_yaml_spells_out_every_key_and_leaves_the_recipe_to_auto() -> None:
    """The rule of defaults: the library's are the papers', the measured recipe is `auto`'s.

    params.yaml names every key so that a reader sees every knob; its recipe keys say `auto`
    (ganforge.recipe holds the measured values), so no measured figure has a second home here.
    """
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    others = {k: v for k, v in Params().model_dump().items() if k != "train"}
    expected = set(flatten(others)) | {f"train.{k}" for k in TrainConfig.model_fields}
    assert set(flatten(raw)) == expected
    recipe_autos = {k for k, v in raw["train"].items() if v == "auto" and k in RECIPE_KEYS}
    assert recipe_autos == set(RECIPE_KEYS)
    assert params.train.root == raw["train"]


def test_library_defaults_are_the_papers() -> None:
    """TrainConfig() is Radford et al.'s DCGAN: nothing measured here hides in a default."""
    cfg = TrainConfig()
    assert (cfg.nz, cfg.ngf, cfg.ndf, cfg.batch_size) == (100, 64, 64, 128)
    assert (cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2) == (2e-4, 2e-4, 0.5, 0.999)
    assert (cfg.loss, cfg.d_steps, cfg.optimizer, cfg.d_norm) == (
        "non_saturating",
        1,
        "adam",
        "batch",
    )
    assert cfg.labels == "none" and cfg.augment == [] and cfg.ema_decay is None
    assert cfg.r1_gamma == 0 and cfg.mode_seeking == 0 and cfg.pack == 1


@pytest.mark.parametrize("key", ["conditional", "latent_class"])
def test_retired_label_keys_point_to_labels(tmp_path: Path, key: str) -> None:
    with pytest.raises(ParamsError) as err:
        load_params(_write(tmp_path, {"train": {key: True}}))
    message = err.value.message
    assert f"train.{key}: replaced by train.labels" in message
    assert len(message.splitlines()) == 2  # the file's line and this one


def test_auto_only_where_a_recipe_decides(tmp_path: Path) -> None:
    with pytest.raises(ParamsError) as err:
        load_params(_write(tmp_path, {"train": {"loss": "auto", "ngf": "auto"}}))
    message = err.value.message
    assert "train.loss = 'auto'" in message and "non_saturating" in message
    assert "ngf" not in message


def test_duplicate_keys_are_refused_as_dvc_does(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\ntrain:\n  ngf: 8\n  ngf: 16\n")
    with pytest.raises(ParamsError, match=r"duplicate key 'ngf' at line 4"):
        load_params(path)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines.append("seed: *a8")
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParamsError, match="more than 64 aliases") as err:
        load_params(path)
    assert len(err.value.message) < 300


def test_values_in_messages_are_bounded_and_bytes_must_be_utf8(tmp_path: Path) -> None:
    with pytest.raises(ParamsError) as err:
        load_params(_write(tmp_path, {"seed": list(range(100_000))}))
    assert len(err.value.message) < 400
    path = tmp_path / "params.yaml"
    path.write_bytes(b"seed: 1\nmlflow:\n  experiment: caf\xe9\n")
    with pytest.raises(ParamsError, match=r"not UTF-8 text \(line 3, byte 33\); save it as UTF-8"):
        load_params(path)


def test_unknown_key_names_the_key_and_the_known_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, {"train": {"learning_rate": 0.1}})
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = err.value.message
    assert "train.learning_rate: unknown key" in message
    assert "lr_g" in message


def test_bad_value_names_key_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, {"train": {"loss": "wasserstein"}, "prepare": {"image_size": -3}})
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = err.value.message
    assert "train.loss = 'wasserstein'" in message
    assert "non_saturating" in message
    assert "prepare.image_size = -3" in message


def test_export_rewrite_names_its_choices(tmp_path: Path) -> None:
    with pytest.raises(ParamsError) as err:
        load_params(_write(tmp_path, {"export": {"rewrite": "winograd"}}))
    message = err.value.message
    assert "export.rewrite = 'winograd'" in message
    assert all(choice in message for choice in ("none", "projection", "subpixel"))


def test_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)


def test_every_param_is_a_dependency_of_its_stage() -> None:
    """A key missing from dvc.yaml would change results without DVC rerunning the stage.

    Stage sections are tracked whole (`- train`): every key, present or defaulted, is then a
    dependency, and DVC never fails on a missing key before the stage's validation speaks.
    """
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    tracked = {stage: set(spec.get("params", [])) for stage, spec in stages.items()}
    for section in ["prepare", "classifier", "train", "evaluate", "export"]:
        assert section in tracked[section], f"dvc.yaml stage {section} must track `{section}`"
        dotted = sorted(k for k in tracked[section] if k.startswith(f"{section}."))
        assert not dotted, f"dvc.yaml stage {section}: {dotted} are covered by `{section}`"
    for stage, keys in tracked.items():
        for key in keys:  # shared keys (seed, mlflow.*) must exist in the config
            head, _, rest = key.partition(".")
            assert head in Params.model_fields, f"{stage}: unknown param {key}"
            if rest:
                model = Params.model_fields[head].annotation
                assert rest in model.model_fields, f"{stage}: unknown param {key}"


def test_outs_of_costly_stages_survive_a_failed_run() -> None:
    """DVC deletes a stage's outs before running it unless they persist (see dvc.yaml)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("train", "evaluate", "export"):
        spec = stages[stage]
        for entry in spec.get("outs", []) + spec.get("metrics", []) + spec.get("plots", []):
            assert isinstance(entry, dict), f"{stage}: {entry} must be declared persist: true"
            path, options = next(iter(entry.items()))
            assert options.get("persist") is True, f"{stage}: {path} must persist"
