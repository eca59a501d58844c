"""What an exported generator says about itself: the `metadata_props` of its ONNX file.

One schema, written by `ganforge.export` and read by `ganforge.inference` (and by any
downstream app, which needs nothing else to use the file). Every value is a string, as ONNX
requires; lists and shapes are JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

IMAGE_OUTPUT = "image"
POINT_OUTPUT = "sample"
Z_INPUT = "z"
LABEL_INPUT = "label"

# Bounds on what a model file may declare, checked before anything is allocated for it.
# A DCGAN's nz is 100, StyleGAN's 512; a 1024 x 1024 RGB sample is 3 Mi values.
MAX_NZ = 16384
MAX_SAMPLE_VALUES = 3 * 1024 * 1024
MAX_CLASSES = 100_000
IMAGE_CHANNELS = (1, 3)  # PNG: grey or RGB


@dataclass(frozen=True)
class ModelMetadata:
    """The facts a downstream app needs about an ONNX generator.

    `sample_shape` is (C, H, W) for image generators, whose output is named `image` with
    values in `value_range`; it is (D,) for toy point generators, whose output is named
    `sample` and whose values are unbounded (`value_range` None).

    Classes: a conditional generator (`conditional`) takes a `label` input beside z; a
    latent-class generator (`latent_class`: `class_prior` holds the share of each of its
    `num_classes` classes) takes z alone and draws its class from z₀, k = F⁻¹(Φ(z₀)), so a
    class is asked for by placing z₀ in the class's interval (`ganforge.inference.latent`).
    `has_classes` covers both; a generator without classes takes no label anywhere.
    """

    nz: int
    sample_shape: tuple[int, ...]
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    class_prior: tuple[float, ...] = ()
    value_range: tuple[float, float] | None = (-1.0, 1.0)
    arch: str = "unknown"
    weights: str = "unknown"
    ganforge_version: str = "unknown"
    mlflow_run_id: str | None = None
    dataset_hash: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        """A `label` input beside z (a class-conditional generator)."""
        return self.num_classes > 0 and not self.class_prior

    @property
    def latent_class(self) -> bool:
        """z alone in, the class drawn from z₀ by `class_prior`."""
        return bool(self.class_prior)

    @property
    def has_classes(self) -> bool:
        """A class can be asked for (conditional or latent-class)."""
        return self.num_classes > 0

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

    @property
    def sample_values(self) -> int:
        """Values in one sample: C·H·W, or D."""
        return math.prod(self.sample_shape)

    @property
    def channels(self) -> int | None:
        return self.sample_shape[0] if self.is_image else None

    @property
    def image_size(self) -> int | None:
        return self.sample_shape[1] if self.is_image else None

    @property
    def input_names(self) -> tuple[str, ...]:
        return (Z_INPUT, LABEL_INPUT) if self.conditional else (Z_INPUT,)

    @property
    def output_name(self) -> str:
        return IMAGE_OUTPUT if self.is_image else POINT_OUTPUT

    def to_props(self) -> dict[str, str]:
        """The `metadata_props` entries (string -> string) for the ONNX file."""
        props = {
            "nz": str(self.nz),
            "sample_shape": json.dumps(list(self.sample_shape)),
            "kind": "image" if self.is_image else "points",
            "num_classes": str(self.num_classes),
            "class_names": json.dumps(list(self.class_names)),
            "class_prior": json.dumps(list(self.class_prior)),
            "value_range": json.dumps(list(self.value_range) if self.value_range else None),
            "arch": self.arch,
            "weights": self.weights,
            "ganforge_version": self.ganforge_version,
            "mlflow_run_id": self.mlflow_run_id or "",
            "dataset_hash": self.dataset_hash or "",
            "inputs": json.dumps(list(self.input_names)),
            "output": self.output_name,
        }
        if self.is_image:
            props["image_shape"] = props["sample_shape"]
            props["channels"] = str(self.channels)
            props["image_size"] = str(self.image_size)
        for key, value in self.extra.items():
            props.setdefault(key, value)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata:
        """Parse `metadata_props`; ValueError naming the key when one is missing or bad."""
        if "nz" not in props or "sample_shape" not in props:
            raise ValueError(
                "not a ganforge generator: its ONNX metadata has no nz / sample_shape "
                "(export it with `dvc repro export`)"
            )
        try:
            nz = int(props["nz"])
            shape = tuple(_int(v) for v in _list(json.loads(props["sample_shape"])))
            num_classes = int(props.get("num_classes", "0"))
            names = tuple(str(v) for v in _list(json.loads(props.get("class_names", "[]"))))
            rng: Any = json.loads(props.get("value_range", "null"))
            prior = tuple(_number(v) for v in _list(json.loads(props.get("class_prior", "[]"))))
        except (ValueError, TypeError, RecursionError) as err:
            raise ValueError(f"bad ganforge metadata in the ONNX file: {_short(err)}") from None
        _check_limits(nz, shape, num_classes)
        _check_prior(prior, num_classes)
        value_range = _value_range(rng)
        known = {f for f in cls.__dataclass_fields__} | {
            "sample_shape",
            "image_shape",
            "channels",
            "image_size",
            "kind",
            "inputs",
            "output",
        }
        return cls(
            nz=nz,
            sample_shape=shape,
            num_classes=num_classes,
            class_names=names,
            class_prior=prior,
            value_range=value_range,
            arch=props.get("arch", "unknown"),
            weights=props.get("weights", "unknown"),
            ganforge_version=props.get("ganforge_version", "unknown"),
            mlflow_run_id=props.get("mlflow_run_id") or None,
            dataset_hash=props.get("dataset_hash") or None,
            extra={k: v for k, v in props.items() if k not in known},
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON and tables), with the derived facts included."""
        data = asdict(self)
        data.update(
            conditional=self.conditional,
            latent_class=self.latent_class,
            has_classes=self.has_classes,
            inputs=list(self.input_names),
            output=self.output_name,
        )
        return data


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON list, got {_short(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_short(value)}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_short(value)}")
    return float(value)


def _check_prior(prior: tuple[float, ...], num_classes: int) -> None:
    """A latent-class prior: one positive finite share per class, summing to 1."""
    if not prior:
        return
    ok = len(prior) == num_classes >= 2 and all(math.isfinite(p) and p > 0 for p in prior)
    if not ok or abs(math.fsum(prior) - 1.0) > 1e-4:
        raise ValueError(
            f"bad ganforge metadata: class_prior = {_short(list(prior))}, must be "
            f"num_classes ({num_classes}, at least 2) positive shares that sum to 1"
        )


def _check_limits(nz: int, shape: tuple[int, ...], num_classes: int) -> None:
    """The declared sizes, against the bounds above: one line naming the key and the limit."""
    if not 1 <= nz <= MAX_NZ:
        raise ValueError(f"bad ganforge metadata: nz = {nz}, must be in 1..{MAX_NZ}")
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(
            f"bad ganforge metadata: sample_shape = {_short(list(shape))}, must be [C, H, W] "
            "(images) or [D] (points) with every size at least 1"
        )
    if len(shape) == 3 and shape[0] not in IMAGE_CHANNELS:
        raise ValueError(
            f"bad ganforge metadata: sample_shape {list(shape)} has {shape[0]} channels; "
            f"images have {' or '.join(map(str, IMAGE_CHANNELS))}"
        )
    if math.prod(shape) > MAX_SAMPLE_VALUES:
        raise ValueError(
            f"bad ganforge metadata: sample_shape {list(shape)} is {math.prod(shape)} values "
            f"per sample, over the limit of {MAX_SAMPLE_VALUES}"
        )
    if not 0 <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"bad ganforge metadata: num_classes = {num_classes}, must be in 0..{MAX_CLASSES}"
        )


def _value_range(rng: Any) -> tuple[float, float] | None:
    """null (unbounded points) or [lo, hi], both finite, lo < hi."""
    if rng is None:
        return None
    ok = isinstance(rng, list) and len(rng) == 2
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
    if ok:
        try:
            lo, hi = float(rng[0]), float(rng[1])
        except OverflowError:  # an integer past float's range
            lo = hi = math.nan
        # 255 / (hi - lo) scales the output to bytes: it must be a finite number too.
        span = hi - lo
        if lo < hi and math.isfinite(span) and math.isfinite(255 / span):
            return lo, hi
    raise ValueError(
        f"bad ganforge metadata: value_range = {_short(rng)}, must be [lo, hi] with finite "
        "lo < hi (or null for points)"
    )


def _short(value: Any, width: int = 60) -> str:
    """A value for an error message: printable and at most `width` characters."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text[: 4 * width])
    return text if len(text) <= width else text[: width - 3] + "..."
