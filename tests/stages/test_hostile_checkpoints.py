"""Checkpoint folder hygiene: no litter from killed writes, no finished training lost unsaid,
none deleted before the run that replaced it has finished."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from tiny_training import Kill
from tiny_training import tiny_config as tiny

from ganforge.training import LAST_CHECKPOINT, fit

pytestmark = pytest.mark.usefixtures("one_thread")


def _leave_temp_file(folder: Path) -> Path:
    """What a kill between `torch.save` and the rename leaves (atomic_path's temp name)."""
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / f".{LAST_CHECKPOINT}.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    return stale


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_temp_files_of_an_interrupted_write_are_removed_at_the_next_start(
    images, tmp_path: Path, with_checkpoint: bool
) -> None:
    x, y = images
    if with_checkpoint:
        fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=4)
    stale = _leave_temp_file(tmp_path)
    other = tmp_path / "notes.txt"  # not ours: left alone
    other.write_text("keep")
    result = fit(tiny(), x, y, checkpoint_dir=tmp_path)
    assert not stale.exists()
    assert other.read_text() == "keep"
    assert result.resumed_from == (4 if with_checkpoint else None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT, "notes.txt"]


def test_a_changed_run_keeps_the_finished_training_until_it_finishes(
    images, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path)  # finished: step 6
    finished = (tmp_path / LAST_CHECKPOINT).read_bytes()
    kept = tmp_path / "replaced-6.pt"

    changed = tiny(lr_g=1e-3, max_steps=10)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        fit(changed, x, y, checkpoint_dir=tmp_path, stop_after=3)  # interrupted at step 3
    text = " ".join(caplog.text.split())
    assert f"checkpoint {tmp_path / LAST_CHECKPOINT} (step 6)" in text
    assert "the previous training (step 6 of a run set to max_steps 6)" in text
    assert "lr_g changed" in text and "dvc exp run" in text and "copy that file" in text
    assert str(kept) in text
    assert text.count("lr_g changed") == 1  # the reasons once, not in two warnings
    # The earlier training survives the interrupted run, byte for byte, beside the new one.
    assert kept.read_bytes() == finished
    assert torch.load(tmp_path / LAST_CHECKPOINT, weights_only=True)["step"] == 3

    assert "until this run finishes, then deleted" in text  # what the code below holds to

    resumed = fit(changed, x, y, checkpoint_dir=tmp_path, stop_after=5)
    assert resumed.resumed_from == 3 and kept.read_bytes() == finished
    passed = fit(changed, x, y, checkpoint_dir=tmp_path, stop_after=8)  # past its step 6
    assert passed.resumed_from == 5 and kept.read_bytes() == finished  # not finished yet
    with pytest.raises(KeyboardInterrupt):  # killed (SIGTERM) on its last stretch
        fit(changed, x, y, checkpoint_dir=tmp_path, callbacks=[Kill(at=9)])
    assert kept.read_bytes() == finished
    done = fit(changed, x, y, checkpoint_dir=tmp_path)
    assert done.step == 10 and not kept.exists()  # its successor finished: removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT]


def test_under_dvc_exp_run_the_replacement_gives_no_advice(
    images, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    with caplog.at_level(logging.INFO, logger="ganforge"):
        fit(tiny(lr_g=1e-3), x, y, checkpoint_dir=tmp_path, stop_after=1)
    text = " ".join(caplog.text.split())
    assert "dvc exp run" not in text and "copy that file" not in text
    assert "kept as" in text and "until this experiment finishes" in text


def test_a_shorter_changed_run_drops_the_kept_checkpoint_only_when_it_finishes(
    images, tmp_path: Path
) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path)
    finished = (tmp_path / LAST_CHECKPOINT).read_bytes()
    shorter = tiny(lr_d=1e-3, max_steps=4)
    with pytest.raises(KeyboardInterrupt):  # killed at its step 3, before it finished
        fit(shorter, x, y, checkpoint_dir=tmp_path, callbacks=[Kill(at=3)])
    assert (tmp_path / "replaced-6.pt").read_bytes() == finished
    fit(shorter, x, y, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT]


def test_two_replaced_trainings_at_the_same_step_are_both_kept(images, tmp_path: Path) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path)  # A, finished at step 6
    first = (tmp_path / LAST_CHECKPOINT).read_bytes()
    fit(tiny(lr_g=1e-3, max_steps=10), x, y, checkpoint_dir=tmp_path, stop_after=6)  # B at 6
    second = (tmp_path / LAST_CHECKPOINT).read_bytes()
    fit(tiny(lr_d=1e-3), x, y, checkpoint_dir=tmp_path, stop_after=2)  # C sets B aside
    assert (tmp_path / "replaced-6.pt").read_bytes() == first
    assert (tmp_path / "replaced-6-2.pt").read_bytes() == second


def test_resuming_the_same_run_sets_nothing_aside(images, tmp_path: Path) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    fit(tiny(log_every=3), x, y, checkpoint_dir=tmp_path)  # a harmless change: resumes
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT]
