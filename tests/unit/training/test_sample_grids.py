"""The plots page's sample grids: a run keeps a few (first, middle, best, last), not one each."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
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


def _fresh() -> SimpleNamespace:
    return SimpleNamespace(resumed_from=None)


def test_a_finished_run_keeps_six_grids(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    out.mkdir()
    (out / "notes.txt").write_text("not a grid")
    Image.new("L", (4, 4)).save(out / "epoch_0300.png")  # a longer previous run's
    grids = SampleGrid(out)
    grids.on_fit_start(_fresh())  # type: ignore[arg-type]
    assert grids.staging is not None and grids.staging.parent == tmp_path
    for epoch in range(1, 241):
        path = grids.staging / f"epoch_{epoch:04d}.png"
        Image.new("L", (4, 4)).save(path)
        grids.paths.append(path)
    history = [{"step": s, "fid_val": 10.0 - abs(s - 780) / 1000} for s in range(100, 1921, 100)]
    history[6]["fid_val"] = 0.5  # step 700: epoch 700 / 8 -> 88 (8 steps an epoch)
    result = SimpleNamespace(history=history, step=1920, epoch=240)
    assert sorted(p.name for p in out.iterdir()) == ["epoch_0300.png", "notes.txt"]  # until done
    grids.on_fit_end(SimpleNamespace(), result)  # type: ignore[arg-type]
    kept = sorted(p.name for p in out.glob("epoch_*.png"))
    assert kept == [f"epoch_{e:04d}.png" for e in (1, 61, 88, 121, 180, 240)]
    assert (out / "notes.txt").read_text() == "not a grid"  # not ours: carried over
    assert grids.paths == [out / name for name in kept]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]  # no staging left


def test_deferred_grids_wait_for_commit(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    out.mkdir()
    Image.new("L", (4, 4)).save(out / "epoch_0009.png")
    grids = SampleGrid(out, defer_commit=True)
    grids.on_fit_start(_fresh())  # type: ignore[arg-type]
    assert grids.staging is not None
    Image.new("L", (4, 4)).save(grids.staging / "epoch_0001.png")
    grids.on_fit_end(SimpleNamespace(), SimpleNamespace(history=[], step=8, epoch=1))  # type: ignore[arg-type]
    assert [p.name for p in out.iterdir()] == ["epoch_0009.png"]
    grids.commit()
    assert [p.name for p in out.iterdir()] == ["epoch_0001.png"]
    grids.commit()  # once only: nothing staged any more
    assert [p.name for p in out.iterdir()] == ["epoch_0001.png"]


@pytest.mark.parametrize("target_left", ["missing", "empty"])
def test_a_swap_cut_by_a_kill_puts_the_previous_grids_back(
    tmp_path: Path, target_left: str
) -> None:
    """A kill between swap_in's two renames: the old folder is aside, the new not in place."""
    out = tmp_path / "samples"
    aside = tmp_path / ".samples.k1ll3d.old"
    aside.mkdir()
    Image.new("L", (4, 4)).save(aside / "epoch_0003.png")
    if target_left == "empty":
        out.mkdir()  # what the stage's mkdir leaves before the next run starts
    SampleGrid(out).on_fit_start(_fresh())  # type: ignore[arg-type]
    assert [p.name for p in out.iterdir()] == ["epoch_0003.png"]
    assert not aside.exists()


@pytest.mark.parametrize(
    "name",
    ["../../etc", "/tmp", ".samples.x.staged/../..", ".other.abc.staged", ".samples..staged", 7],
)
def test_a_checkpoint_cannot_point_the_grids_elsewhere(tmp_path: Path, name: object) -> None:
    """The staging folder named in a checkpoint is used only when it is one of ours."""
    out = tmp_path / "ws" / "samples"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "epoch_0001.png").write_bytes(b"precious")
    grids = SampleGrid(out)
    grids.load_state_dict({"staging": name})
    grids.on_fit_start(SimpleNamespace(resumed_from=4))  # type: ignore[arg-type]
    assert grids.staging is not None and grids.staging.parent == out.parent
    assert (victim / "epoch_0001.png").read_bytes() == b"precious"
