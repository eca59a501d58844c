"""The plots page's sample grids: a run keeps a few (first, middle, best, last), not one each."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from ganforge.training.callbacks import SampleGrid, best_logged_step, keep_epochs


def test_keep_epochs_picks_first_middle_best_and_last() -> None:
    assert keep_epochs(list(range(1, 241)), best=97) == {1, 61, 97, 121, 180, 240}
    assert keep_epochs([1, 2, 3], best=None) == {1, 2, 3}
    assert keep_epochs([4, 9], best=100) == {4, 9}
    assert keep_epochs([], best=3) == set()


def test_best_logged_step_reads_the_validation_score() -> None:
    rows = [
        {"step": 100, "fid_val": 3.0},
        {"step": 150, "loss_d": 1.0},
        {"step": 200, "fid_val": 2.0},
        {"step": 300, "fid_val": 2.0},  # a tie keeps the later step, as train.keep: best does
        {"step": 400, "fid_val": float("nan")},
    ]
    assert best_logged_step(rows) == 300
    assert best_logged_step([{"step": 5, "mode_quality_val": 0.2},
                             {"step": 9, "mode_quality_val": 0.9}]) == 9  # fmt: skip
    assert best_logged_step([{"step": 5, "loss_d": 1.0}]) is None


def test_a_finished_run_keeps_six_grids(tmp_path: Path) -> None:
    grids = SampleGrid(tmp_path)
    for epoch in range(1, 241):
        path = tmp_path / f"epoch_{epoch:04d}.png"
        Image.new("L", (4, 4)).save(path)
        grids.paths.append(path)
    (tmp_path / "notes.txt").write_text("not a grid")
    history = [{"step": s, "fid_val": 10.0 - abs(s - 780) / 1000} for s in range(100, 1921, 100)]
    history[6]["fid_val"] = 0.5  # step 700: epoch 700 / 8 -> 88 (8 steps an epoch)
    result = SimpleNamespace(history=history, step=1920, epoch=240)
    grids.on_fit_end(SimpleNamespace(), result)  # type: ignore[arg-type]
    kept = sorted(p.name for p in tmp_path.glob("epoch_*.png"))
    assert kept == [f"epoch_{e:04d}.png" for e in (1, 61, 88, 121, 180, 240)]
    assert (tmp_path / "notes.txt").exists()
    assert [p.name for p in grids.paths] == kept
