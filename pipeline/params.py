"""params.yaml: loaded once, validated whole; errors name the key, the value and the fix."""

from __future__ import annotations

import os
import reprlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from ganforge.config import (
    ClassifierConfig,
    EvaluateConfig,
    ExportConfig,
    PrepareConfig,
    TrainConfig,
)
from ganforge.recipe import AUTO, RECIPE_KEYS, DataFacts, Recipe, resolve_recipe

PARAMS_FILE = "params.yaml"
# Keys params.yaml no longer has, with what replaced them (the one-line hint on a stale file).
RETIRED = {
    "train.conditional": "replaced by train.labels (conditional: true -> labels: conditional)",
    "train.latent_class": (
        "replaced by train.labels (latent_class: true -> labels: latent, false -> labels: none)"
    ),
}
# A YAML alias repeats a whole subtree: past this many in one file it is refused, so a small
# file cannot expand into gigabytes (a "billion laughs" file).
MAX_YAML_ALIASES = 64
_short = reprlib.Repr()  # error messages quote values at a bounded size
_short.maxstring = _short.maxother = 60
_short.maxlist = _short.maxdict = 6
_short.maxlevel = 2


class MlflowConfig(BaseModel):
    """Where runs are tracked and under which names (tracking URI: from the environment)."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field("ganforge", min_length=1)
    run_name: str | None = None
    registered_model: str | None = Field("ganforge-generator", min_length=1)


class TrainRequest(RootModel[dict[str, Any]]):
    """params.yaml's `train:` section as written: values, and `auto` for the recipe's keys.

    Checked key by key on load (every stage), resolved against the prepared data by the train
    stage (`resolve`): a recipe key left out means auto, any other key left out its default.
    """

    @model_validator(mode="after")
    def _valid_request(self) -> TrainRequest:
        problems = train_request_problems(self.root)
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def resolve(self, facts: DataFacts) -> Recipe:
        """The whole training configuration on data described by `facts` (`ganforge.recipe`)."""
        return resolve_recipe(self.root, facts)


def train_request_problems(request: dict[str, Any]) -> list[str]:
    """One line per bad key of a `train:` section: unknown, retired or a bad value."""
    problems = []
    known = TrainConfig.model_fields
    for key in request:
        if f"train.{key}" in RETIRED:
            problems.append(f"train.{key}: {RETIRED[f'train.{key}']}")
        elif key not in known:
            problems.append(f"train.{key}: unknown key; known keys here: {', '.join(known)}")
    # `auto` on a recipe key is resolved later; anywhere else it is a value like any other.
    explicit = {
        k: v for k, v in request.items() if k in known and not (v == AUTO and k in RECIPE_KEYS)
    }
    try:
        TrainConfig.model_validate(explicit)
    except ValidationError as err:
        for e in err.errors():
            msg = str(e["msg"]).removeprefix("Value error, ")
            if e["loc"]:
                key = str(e["loc"][0])
                problems.append(f"train.{key} = {_short.repr(explicit.get(key))}: {msg}")
            else:
                problems.append(f"train: {msg}")
    return problems


class Params(BaseModel):
    """The whole of params.yaml: shared `seed` and `mlflow`, then one section per stage."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    train: TrainRequest = Field(default_factory=lambda: TrainRequest({}))
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @model_validator(mode="after")
    def _model_can_build_the_image_size(self) -> Params:
        # Checked across sections so that `prepare` refuses a size `train` could not build,
        # before it spends minutes (and hundreds of MB) on a store nobody can train on.
        from ganforge.data.prepare import TOY_DATASETS
        from ganforge.models.spec import dcgan_levels

        # `auto` picks dcgan for image data sets (mlp for toy points).
        model = self.train.root.get("model", AUTO)
        if self.prepare.dataset in TOY_DATASETS or model not in ("dcgan", AUTO):
            return self
        try:
            dcgan_levels(self.prepare.image_size)
        except ValueError:
            raise ValueError(
                f"prepare.image_size = {self.prepare.image_size}: train.model "
                f"{model} builds square power-of-two images from 16 to 256; set "
                "prepare.image_size to 16, 32, 64, 128 or 256 (or train.model: mlp)"
            ) from None
        return self


class ParamsError(SystemExit):
    """A bad params.yaml: exits the stage with a readable message instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _fields(model: Any) -> dict[str, FieldInfo]:
    """The fields of a pydantic model class (none for anything else)."""
    return model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}


def _describe(err: ErrorDetails, raw: dict[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    if not loc or loc == ["train"]:  # checks whose messages name the keys themselves
        return str(err["msg"]).removeprefix("Value error, ")
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        parent: Any = Params
        for part in loc[:-1]:
            field = _fields(parent).get(part)
            parent = field.annotation if field is not None else None
        allowed = sorted(_fields(parent))
        hint = f"; known keys here: {', '.join(allowed)}" if allowed else ""
        return f"{key}: unknown key{hint}"
    value: Any = raw
    for part in loc:
        value = value.get(part, "<missing>") if isinstance(value, dict) else "<missing>"
    if key in RETIRED:
        return f"{key}: {RETIRED[key]}"
    return f"{key} = {_short.repr(value)}: {err['msg']}"


class _StrictLoader(yaml.SafeLoader):
    """yaml's safe loader that refuses duplicate keys (as DVC does) and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"more than {MAX_YAML_ALIASES} aliases (*name) at line {mark.line + 1}: "
                    "write the values out"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.YAMLError(
                    f"duplicate key {_short.repr(key)} at line {key_node.start_mark.line + 1}: "
                    "keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_params(path: str | os.PathLike[str] = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; raise ParamsError listing every bad key at once."""
    file = Path(path)
    if not file.is_file():
        raise ParamsError(f"{file}: not found. Run the stage from the repository root.")
    data = file.read_bytes()
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_StrictLoader) or {}
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ParamsError(
            f"{file}: not UTF-8 text (line {line}, byte {err.start}); save it as UTF-8"
        ) from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{file}: not valid YAML: {_short.repr(str(err))}") from None
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
