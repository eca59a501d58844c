"""params.yaml: every key has one home, a default and a check; dvc.yaml tracks every key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.params import Params, ParamsError, flatten, load_params

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_repo_params_yaml_is_valid_and_matches_the_defaults() -> None:
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    # params.yaml spells out every key, so a reader sees every knob and its value.
    assert set(flatten(raw)) == set(flatten(Params().model_dump()))
    assert params.train.lr_g == pytest.approx(4e-4)  # Radford's 2e-4, doubled with the batch
    assert params.train.beta1 == pytest.approx(0.5)


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
