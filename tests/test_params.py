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


def test_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)


def test_every_param_is_a_dependency_of_its_stage() -> None:
    """A key missing from dvc.yaml would change results without DVC rerunning the stage."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    tracked = {stage: set(spec.get("params", [])) for stage, spec in stages.items()}
    sections = ["prepare", "classifier", "train", "evaluate", "export"]
    for section in sections:
        keys = {f"{section}.{k}" for k in Params.model_fields[section].annotation.model_fields}
        missing = keys - tracked[section]
        assert not missing, f"dvc.yaml stage {section} does not track {sorted(missing)}"
