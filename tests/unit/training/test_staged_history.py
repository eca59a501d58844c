"""A training's history CSV and sample grids are staged and swapped in only when it finishes;
a full disk is one OSError naming the out, in every writer (tests/tiny_training.py's run).

The set-up of issue #20: a finished run's outs, then a run of changed options that is killed
(SIGTERM: a KeyboardInterrupt subclass in the stage) or meets a full disk. Its outs must be
byte for byte the finished run's until the new run finishes.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_training import Kill, tiny_config

from ganforge.io import atomic_path, torch_save, write_json
from ganforge.training import LAST_CHECKPOINT, Callback, HistoryCSV, SampleGrid, fit

pytestmark = pytest.mark.usefixtures("one_thread")

# 4 batches of 40 an epoch: 3 epochs (grids) in 12 steps, a log row and a checkpoint every 2.
FINISHED = {"max_steps": 12, "batch_size": 40}
CHANGED = {"max_steps": 12, "batch_size": 40, "lr_g": 1e-3}


def _train(images, root: Path, options: dict, *extra: Callback):
    x, y = images
    callbacks = [HistoryCSV(root / "plots/train_history.csv"), SampleGrid(root / "plots/samples")]
    return fit(
        tiny_config(**options),
        x,
        y,
        checkpoint_dir=root / "models/checkpoints",
        callbacks=[*callbacks, *extra],
    )


def _outs(root: Path) -> dict[str, bytes]:
    """The history CSV and every sample grid, by path relative to `root`."""
    files = [root / "plots/train_history.csv", *sorted((root / "plots/samples").iterdir())]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _staged(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "plots").glob(".*.staged"))


def _steps(root: Path) -> list[str]:
    lines = (root / "plots/train_history.csv").read_text().splitlines()[1:]
    return [line.split(",")[0] for line in lines]


def test_a_killed_fresh_run_leaves_the_finished_runs_history_and_grids(
    images, tmp_path: Path
) -> None:
    _train(images, tmp_path, FINISHED)
    before = _outs(tmp_path)
    assert len(before) == 1 + 3 and _steps(tmp_path) == ["2", "4", "6", "8", "10", "12"]

    with pytest.raises(KeyboardInterrupt):
        _train(images, tmp_path, CHANGED, Kill(at=7))
    assert _outs(tmp_path) == before
    # What the killed run drew is kept aside for its resume, under hidden names.
    assert [n.split(".")[1] for n in _staged(tmp_path)] == ["samples", "train_history"]

    resumed = _train(images, tmp_path, CHANGED)
    assert resumed.resumed_from == 6 and resumed.step == 12
    assert _staged(tmp_path) == [] and not list((tmp_path / "plots").glob(".*"))
    # The resumed run's outs are the uninterrupted run's: its own earlier rows and the grid
    # drawn before the kill included.
    straight = _train(images, tmp_path / "straight", CHANGED)
    assert straight.resumed_from is None
    after, reference = _outs(tmp_path), _outs(tmp_path / "straight")
    assert after.keys() == reference.keys() and after != before
    for name in after:
        if name.endswith(".png"):
            assert after[name] == reference[name], name
    assert _steps(tmp_path) == _steps(tmp_path / "straight") == ["2", "4", "6", "8", "10", "12"]


def test_a_run_that_fails_before_its_first_row_changes_nothing(images, tmp_path: Path) -> None:
    _train(images, tmp_path, FINISHED)
    before = _outs(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _train(images, tmp_path, CHANGED, Kill(at=1))
    assert _outs(tmp_path) == before
    _train(images, tmp_path, CHANGED)  # the next start clears what the killed one staged
    assert _staged(tmp_path) == [] and _outs(tmp_path) != before


def test_training_on_keeps_the_grids_of_the_finished_sessions(images, tmp_path: Path) -> None:
    _train(images, tmp_path, FINISHED)
    first = _outs(tmp_path)
    longer = _train(images, tmp_path, {**FINISHED, "max_steps": 20})  # 5 epochs
    assert longer.resumed_from == 12
    after = _outs(tmp_path)
    for epoch in (1, 2, 3):  # drawn by the first session, kept (5 grids: keep_epochs keeps all)
        name = f"plots/samples/epoch_{epoch:04d}.png"
        assert after[name] == first[name]
    assert "plots/samples/epoch_0005.png" in after and _staged(tmp_path) == []
    assert len(_steps(tmp_path)) == 10


# ---------------------------------------------------------------------- a full disk
def _enospc_in_torch_save(obj, f, *args, **kwargs) -> None:
    """What torch.save does on a full disk: the write fails, then its zip writer raises."""
    f.write(b"PK\x03\x04 half a checkpoint")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
        ) from None


def _enospc(*args, **kwargs) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _edquot(*args, **kwargs) -> None:
    raise OSError(errno.EDQUOT, "Disk quota exceeded")


# what breaks -> (what to patch, the out the error must name)
FULL_DISK = {
    "checkpoint": ("torch.save", _enospc_in_torch_save, f"models/checkpoints/{LAST_CHECKPOINT}"),
    "sample-grid": ("torchvision.utils.save_image", _enospc, "plots/samples/epoch_0001.png"),
    "history-csv": (
        "ganforge.training.callbacks.write_history_csv",
        _edquot,
        "plots/train_history.csv",
    ),
}


@pytest.mark.parametrize("case", list(FULL_DISK))
def test_a_full_disk_is_one_oserror_naming_the_out_and_keeps_the_outs(
    images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    target, broken, named = FULL_DISK[case]
    _train(images, tmp_path, FINISHED)
    before = _outs(tmp_path)
    finished = (tmp_path / "models/checkpoints" / LAST_CHECKPOINT).read_bytes()

    monkeypatch.setattr(target, broken)
    with pytest.raises(OSError) as info:
        _train(images, tmp_path, CHANGED)
    err = info.value
    assert err.errno == errno.ENOSPC and err.filename == str(tmp_path / named)
    assert str(err) == f"[Errno 28] No space left on device: '{tmp_path / named}'"
    assert _outs(tmp_path) == before
    checkpoints = tmp_path / "models/checkpoints"
    assert (checkpoints / "replaced-12.pt").read_bytes() == finished  # kept: not finished
    assert not list(tmp_path.rglob("*.tmp"))

    monkeypatch.undo()  # space freed: the same command finishes and swaps its outs in
    _train(images, tmp_path, CHANGED)
    assert _outs(tmp_path) != before and _staged(tmp_path) == []
    assert sorted(p.name for p in checkpoints.iterdir()) == [LAST_CHECKPOINT]


# writer -> how it writes `path`
WRITERS = {
    "atomic_path": lambda path: _atomic_text(path),
    "write_json": lambda path: write_json(path, {"a": 1}),
    "torch_save": lambda path: torch_save({"w": torch.zeros(3)}, path),
}


def _atomic_text(path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("new")


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_each_writer_names_its_target_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, code: int
) -> None:
    target = tmp_path / "out" / "file.bin"
    target.parent.mkdir()
    target.write_bytes(b"previous")
    real_open = Path.open

    def full(self: Path, *args, **kwargs):  # every file opened for writing fills the disk
        handle = real_open(self, *args, **kwargs)
        if "w" in (args[0] if args else kwargs.get("mode", "r")):
            handle.close()
            raise OSError(code, "full")
        return handle

    monkeypatch.setattr(Path, "open", full)
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: full(self, "w"))
    with pytest.raises(OSError) as info:
        WRITERS[writer](target)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(target))
    assert info.value.strerror == "No space left on device"
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]  # no temp file


def test_other_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a disk"), atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("half")
        raise ValueError("not a disk")
    with pytest.raises(PermissionError), atomic_path(tmp_path / "y"):
        raise PermissionError(errno.EACCES, "denied")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- a real full disk
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs at tmp_path/disk; skipped where mounting is not permitted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill `disk` up, then free `leave` bytes: room for a grid, none for a checkpoint."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh:  # unbuffered: no flush left to fail at close
        try:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    with filler.open("r+b") as fh:
        fh.truncate(filler.stat().st_size - leave)
    return filler


def test_a_real_full_disk_keeps_the_outs_and_names_the_checkpoint(images, small_disk: Path) -> None:
    _train(images, small_disk, FINISHED)
    before = _outs(small_disk)
    filler = _fill(small_disk, leave=24 * 1024)

    with pytest.raises(OSError) as info:  # no RuntimeError of torch's zip writer
        _train(images, small_disk, CHANGED)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(small_disk / "models/checkpoints" / LAST_CHECKPOINT)
    assert _outs(small_disk) == before
    assert not list(small_disk.rglob("*.tmp"))

    filler.unlink()
    result = _train(images, small_disk, CHANGED)
    assert result.step == 12 and _outs(small_disk) != before and _staged(small_disk) == []
