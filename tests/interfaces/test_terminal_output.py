"""A calm terminal: the train bar with ETA at 80 and 120 columns, one line per classifier
epoch and per evaluation, on fixed-width consoles."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest
from rich.console import Console
from rich.progress import Progress

ROW = {"step": 1234, "loss_d": 1.23456, "loss_g": 0.98765, "d_real": 0.61, "d_fake": 0.42,
       "images_per_s": 812.4, "fid_val": 3.0}  # fmt: skip


def _bar_text(width: int, total: int, step: int) -> str:
    """The train bar as a `width`-column terminal shows it, `step` steps done in 60 s."""
    from pipeline.train_callbacks import ProgressBar, progress_columns

    console = Console(width=width, file=io.StringIO(), force_terminal=False, record=True)
    clock = [0.0]
    progress = Progress(*progress_columns(), console=console, get_time=lambda: clock[0])
    bar = ProgressBar(progress)
    bar.on_fit_start(SimpleNamespace(total_steps=total, step=0))
    for tick in range(1, 7):  # a steady speed, so that the ETA is known
        clock[0] = 10.0 * tick
        bar.on_step_end(SimpleNamespace(step=step * tick // 6))
    bar.on_log(SimpleNamespace(), {**ROW, "step": step})
    console.print(progress.get_renderable())
    return console.export_text()


@pytest.mark.parametrize("total", [1999, 99_999])
def test_train_bar_fits_80_columns_with_eta(total: int) -> None:
    text = _bar_text(80, total, total // 2)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    (line,) = lines
    assert len(line) <= 80 and "…" not in line, line
    assert f"{total // 2}/{total}" in line and "eta 0:01:00" in line
    assert "loss D 1.23 G 0.99" in line and "812 img/s" in line


def test_train_bar_at_120_columns_shows_more() -> None:
    (line,) = [ln for ln in _bar_text(120, 1999, 1000).splitlines() if ln.strip()]
    assert len(line) <= 120 and "…" not in line, line
    for part in ("1000/1999", "eta", "D(x) 0.61", "D(G(z)) 0.42", "fid_val 3.000"):
        assert part in line, line


def test_classifier_epoch_is_one_formatted_line() -> None:
    from pipeline.console import EpochLine

    record = logging.LogRecord(
        "ganforge.classifier", logging.INFO, __file__, 1, "classifier epoch %d: %s",
        (3, {"epoch": 3, "loss": 0.34123, "train_accuracy": 0.9968, "val_accuracy": 0.99,
             "val_loss": 0.0937}), None,
    )  # fmt: skip
    assert EpochLine(15).filter(record)
    assert record.getMessage() == (
        "classifier epoch  3/15: loss 0.341, train accuracy 99.7 %, "
        "val accuracy 99.0 %, val loss 0.094"
    )


def test_evaluate_summary_is_one_line_at_80_columns() -> None:
    from pipeline.console import summary

    metrics = {"fid": 0.5412, "fid_floor": 0.161, "fid_over_floor": 3.36, "precision": 0.8412,
               "recall": 0.88, "kid_mean": 0.00123, "is_mean": 9.1234, "classes_covered": 10,
               "num_classes": 10, "class_kl": 0.0123, "copy_fraction": 0.001,
               "weights": "ema", "dataset": "digits"}  # fmt: skip
    line = summary(metrics)
    assert "\n" not in line and len(line) <= 200
    assert line.startswith("evaluate: FID 0.541 (floor 0.161, 3.36×)")
    for part in ("precision 0.841", "recall 0.880", "classes 10/10"):
        assert part in line, line
    console = Console(width=80, file=io.StringIO(), record=True)
    console.print(line, soft_wrap=False)
    assert all(len(ln) <= 80 for ln in console.export_text().splitlines())
    toy = summary({"modes_covered": 8, "num_modes": 8, "high_quality_fraction": 0.946})
    assert toy == "evaluate: modes 8/8, high quality 0.946"


def test_validation_score_line_has_one_number_format(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    import torch

    from ganforge.training.quality import QualityMonitor

    for value, shown in ((3.0, "3.000"), (2.7412, "2.741")):

        class Measure:
            column = "fid_val"

            def __call__(self, samples: torch.Tensor, v: float = value) -> tuple[float, None]:
                return v, None

        monitor = QualityMonitor(Measure(), every=1, num_samples=2)
        monitor.generate = lambda trainer: torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
        with caplog.at_level(logging.INFO, "ganforge.training.quality"):
            monitor.score(SimpleNamespace(step=100))
        assert f"step 100: fid_val = {shown}" in caplog.text
        caplog.clear()
