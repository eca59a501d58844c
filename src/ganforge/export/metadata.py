"""The ONNX file's `metadata_props`, built from a generator's spec and provenance."""

from __future__ import annotations

from typing import Any

import ganforge
from ganforge.inference.metadata import ModelMetadata
from ganforge.models.spec import GeneratorSpec


def build_metadata(spec: GeneratorSpec, extra: dict[str, Any] | None = None) -> ModelMetadata:
    """Metadata for `spec`; `extra` is the checkpoint's provenance (see `load_generator`).

    Reads `run_id`, `dataset_hash`, `weights` and `class_names` from `extra`; the spec's own
    class names win when it has them. A latent-class spec's `class_prior` is recorded.
    """
    extra = extra or {}
    names = tuple(spec.class_names) or tuple(str(n) for n in extra.get("class_names") or ())
    if spec.num_classes and len(names) != spec.num_classes:
        names = tuple(str(i) for i in range(spec.num_classes))
    # A latent-class G takes z alone (no label input); its prior in the metadata lets every
    # app ask it for a class by placing z₀ in the class's interval.
    return ModelMetadata(
        nz=spec.nz,
        sample_shape=tuple(spec.sample_shape),
        num_classes=spec.num_classes,
        class_names=names,
        class_prior=tuple(float(p) for p in spec.class_prior),
        value_range=(-1.0, 1.0) if spec.is_image else None,
        arch=spec.arch,
        weights=str(extra.get("weights", "unknown")),
        ganforge_version=ganforge.__version__,
        mlflow_run_id=extra.get("run_id") or None,
        dataset_hash=extra.get("dataset_hash") or None,
    )
