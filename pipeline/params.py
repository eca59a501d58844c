"""params.yaml: loaded once, validated whole; errors name the key, the value and the fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ganforge.config import (
    ClassifierConfig,
    EvaluateConfig,
    ExportConfig,
    PrepareConfig,
    TrainConfig,
)

PARAMS_FILE = "params.yaml"


class MlflowConfig(BaseModel):
    """Where runs are tracked and under which names (tracking URI: from the environment)."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field("ganforge", min_length=1)
    run_name: str | None = None
    registered_model: str | None = Field("ganforge-generator", min_length=1)


class Params(BaseModel):
    """The whole of params.yaml: shared `seed` and `mlflow`, then one section per stage."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @model_validator(mode="after")
    def _model_can_build_the_image_size(self) -> Params:
        # Checked across sections so that `prepare` refuses a size `train` could not build,
        # before it spends minutes (and hundreds of MB) on a store nobody can train on.
        from ganforge.data.prepare import TOY_DATASETS
        from ganforge.models.spec import dcgan_levels

        # `auto` picks dcgan for image data sets (mlp for toy points).
        if self.prepare.dataset in TOY_DATASETS or self.train.model not in ("dcgan", "auto"):
            return self
        try:
            dcgan_levels(self.prepare.image_size)
        except ValueError:
            raise ValueError(
                f"prepare.image_size = {self.prepare.image_size}: train.model "
                f"{self.train.model} builds square power-of-two images from 16 to 256; set "
                "prepare.image_size to 16, 32, 64, 128 or 256 (or train.model: mlp)"
            ) from None
        return self


class ParamsError(SystemExit):
    """A bad params.yaml: exits the stage with a readable message instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(err: dict[str, Any], raw: dict[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    if not loc:  # a check across sections: its message names the keys itself
        return str(err["msg"]).removeprefix("Value error, ")
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        parent: Any = Params
        for part in loc[:-1]:
            field = parent.model_fields.get(part) if isinstance(parent, type) else None
            parent = field.annotation if field is not None else None
        allowed = sorted(parent.model_fields) if isinstance(parent, type) else []
        hint = f"; known keys here: {', '.join(allowed)}" if allowed else ""
        return f"{key}: unknown key{hint}"
    value: Any = raw
    for part in loc:
        value = value.get(part, "<missing>") if isinstance(value, dict) else "<missing>"
    return f"{key} = {value!r}: {err['msg']}"


def load_params(path: str | os.PathLike[str] = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; raise ParamsError listing every bad key at once."""
    file = Path(path)
    if not file.is_file():
        raise ParamsError(f"{file}: not found. Run the stage from the repository root.")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{file}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{file}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        lines = [_describe(e, raw) for e in err.errors()]
        raise ParamsError(f"{file}: invalid parameters\n  " + "\n  ".join(lines)) from None


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"train": {"lr_g": 2e-4}}` -> `{"train.lr_g": 2e-4}` (for MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
