"""What an exported generator says about itself: the `metadata_props` of its ONNX file.

One schema, written by `ganforge.export` and read by `ganforge.inference` (and by any
downstream app, which needs nothing else to use the file). Every value is a string, as ONNX
requires; lists and shapes are JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

IMAGE_OUTPUT = "image"
POINT_OUTPUT = "sample"
Z_INPUT = "z"
LABEL_INPUT = "label"


@dataclass(frozen=True)
class ModelMetadata:
    """The facts a downstream app needs about an ONNX generator.

    `sample_shape` is (C, H, W) for image generators, whose output is named `image` with
    values in `value_range`; it is (D,) for toy point generators, whose output is named
    `sample` and whose values are unbounded (`value_range` None).
    """

    nz: int
    sample_shape: tuple[int, ...]
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = (-1.0, 1.0)
    arch: str = "unknown"
    weights: str = "unknown"
    ganforge_version: str = "unknown"
    mlflow_run_id: str | None = None
    dataset_hash: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

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
            shape = tuple(int(v) for v in json.loads(props["sample_shape"]))
            num_classes = int(props.get("num_classes", "0"))
            names = tuple(str(v) for v in json.loads(props.get("class_names", "[]")))
            rng: Any = json.loads(props.get("value_range", "null"))
        except (ValueError, TypeError) as err:
            raise ValueError(f"bad ganforge metadata in the ONNX file: {err}") from None
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
            value_range=(float(rng[0]), float(rng[1])) if rng else None,
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
            inputs=list(self.input_names),
            output=self.output_name,
        )
        return data
