"""`ganforge info`: what an exported generator says about itself, printed as plain text."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ganforge.cli.common import console, printable
from ganforge.cli.model import load
from ganforge.cli.options import DEFAULT_MODEL, ModelOpt, ProviderChoice, ProviderOpt
from ganforge.inference import Generator
from ganforge.inference.metadata import ModelMetadata

# Text shown per metadata value, and the most extra metadata entries listed.
INFO_VALUE_CHARS = 2000
INFO_EXTRA_ROWS = 100


def info(
    model: ModelOpt = DEFAULT_MODEL,
    provider: ProviderOpt = ProviderChoice.cpu,
) -> None:
    """Show what the exported generator says about itself (its ONNX metadata)."""
    gen = load(model, provider)
    # Every key and value comes from the file: plain Text (no markup, no links), control
    # characters escaped, long values cut, so that any metadata prints at once and as it is.
    table = Table(title=Text(printable(model)), show_header=True, header_style="bold")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in _rows(gen).items():
        if value is not None:
            table.add_row(Text(printable(key, 200)), Text(printable(value, INFO_VALUE_CHARS)))
    console.print(table)


def _rows(gen: Generator) -> dict[str, object]:
    """The table's rows: the known metadata, then the file's other entries (bounded)."""
    meta = gen.metadata
    rows: dict[str, object] = {
        "arch": meta.arch,
        "kind": "image" if meta.is_image else "points",
        "nz": meta.nz,
        "sample shape": list(meta.sample_shape),
        "channels": meta.channels,
        "image size": meta.image_size,
        "value range": list(meta.value_range) if meta.value_range else "unbounded",
        "classes": _classes_line(meta),
        "class names": ", ".join(meta.class_names) or "-",
        "inputs": ", ".join(i.name for i in gen.session.get_inputs()),
        "output": gen.session.get_outputs()[0].name,
        "weights": meta.weights,
        "mlflow run": meta.mlflow_run_id or "-",
        "dataset hash": meta.dataset_hash or "-",
        "ganforge version": meta.ganforge_version,
        "providers": ", ".join(gen.providers),
    }
    extra = sorted(meta.extra.items())
    rows.update(extra[:INFO_EXTRA_ROWS])
    if len(extra) > INFO_EXTRA_ROWS:
        rows["..."] = f"{len(extra) - INFO_EXTRA_ROWS} more metadata entries not shown"
    return rows


def _classes_line(meta: ModelMetadata) -> str:
    """How the model takes a class, in words."""
    if meta.conditional:
        return f"{meta.num_classes}, conditional (a label input; --label picks one)"
    if meta.latent_class:
        return f"{meta.num_classes}, drawn from z₀ (latent-class; --label places z₀ in one)"
    return "none (no --label)"
