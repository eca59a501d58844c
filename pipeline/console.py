"""What the classifier and evaluate stages print: the classifier's epoch lines and evaluate's
one-line summary of its scores (the train stage's bar: pipeline/train_callbacks.py)."""

from __future__ import annotations

import logging
from typing import Any

# (name in the library's epoch row, shown as, format): a percentage or three decimals.
EPOCH_FIELDS = (
    ("loss", "loss", "{:.3f}"),
    ("train_accuracy", "train accuracy", "{:.1%}"),
    ("val_accuracy", "val accuracy", "{:.1%}"),
    ("val_loss", "val loss", "{:.3f}"),
)


class EpochLine(logging.Filter):
    """The library's per-epoch record (`classifier epoch N: {dict}`) as one readable line."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == "classifier epoch %d: %s" and isinstance(args, tuple) and len(args) == 2:
            epoch, row = args
            if isinstance(row, dict):
                shown = [
                    f"{name} {fmt.format(row[key])}".replace("%", " %")
                    for key, name, fmt in EPOCH_FIELDS
                    if isinstance(row.get(key), int | float)
                ]
                width = len(str(self.epochs))
                record.msg = f"classifier epoch {epoch:{width}d}/{self.epochs}: " + ", ".join(shown)
                record.args = ()
        return True


def summary(m: dict[str, Any]) -> str:
    """The headline scores in one line, each number in one format (3 decimals)."""

    def num(key: str) -> str:
        return f"{float(m[key]):.3f}"

    parts = []
    if isinstance(m.get("fid"), int | float):
        floor = ""
        if isinstance(m.get("fid_floor"), int | float) and isinstance(
            m.get("fid_over_floor"), int | float
        ):
            floor = f" (floor {num('fid_floor')}, {float(m['fid_over_floor']):.2f}×)"
        parts.append(f"FID {num('fid')}{floor}")
    for key, name in (("precision", "precision"), ("recall", "recall")):
        if isinstance(m.get(key), int | float):
            parts.append(f"{name} {num(key)}")
    if m.get("num_classes"):
        parts.append(f"classes {m.get('classes_covered')}/{m['num_classes']}")
    if m.get("num_modes"):
        parts.append(f"modes {m.get('modes_covered')}/{m['num_modes']}")
    for key, name in (("high_quality_fraction", "high quality"), ("jsd", "JSD")):
        if isinstance(m.get(key), int | float):
            parts.append(f"{name} {num(key)}")
    return "evaluate: " + ", ".join(parts)
