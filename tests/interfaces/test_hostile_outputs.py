"""`ganforge generate | interpolate` never write through a planted link nor mix two runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hostile_models import image_model
from PIL import Image
from typer.testing import CliRunner

from ganforge.cli import app

runner = CliRunner()
VICTIM = b"precious: must survive\n"


@pytest.fixture()
def models(tmp_path: Path) -> dict[str, Path]:
    return {
        "image": image_model(tmp_path / "img.onnx"),
        "points": image_model(tmp_path / "pts.onnx", nz=2, shape=(2,)),
    }


def _plant(link: Path, tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    link.symlink_to(victim)
    return victim


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("model", "name", "command"),
    [
        ("image", "grid.png", "generate"),
        ("image", "walk.png", "interpolate"),
        ("points", "pts.npy", "generate"),
        ("points", "pts.csv", "generate"),
    ],
)
def test_a_planted_link_is_replaced_not_written_through(
    models, tmp_path: Path, model: str, name: str, command: str
) -> None:
    out = tmp_path / "out" / name
    out.parent.mkdir()
    victim = _plant(out, tmp_path)
    _ok([command, "-m", str(models[model]), "-o", str(out)])
    assert victim.read_bytes() == VICTIM
    assert out.is_file() and not out.is_symlink()
    if name.endswith(".npy"):
        assert np.load(out).shape == (64, 2)
    elif name.endswith(".csv"):
        assert out.read_text().splitlines()[0] == "x0,x1"
    else:
        Image.open(out).verify()


def test_a_folder_output_refuses_a_non_empty_folder(models, tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    victim = _plant(folder / "sample_0000000.png", tmp_path)
    result = runner.invoke(
        app, ["generate", "-m", str(models["image"]), "-n", "3", "-o", str(folder)]
    )
    out = result.output.strip()
    assert result.exit_code == 1 and out.startswith("error:") and "--overwrite" in out, out
    assert len(out.splitlines()) == 1 and "Traceback" not in out
    assert victim.read_bytes() == VICTIM and (folder / "sample_0000000.png").is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == ["sample_0000000.png"]


def test_overwrite_replaces_only_the_sample_files(models, tmp_path: Path) -> None:
    """--overwrite: the link is replaced by a file, stale samples of a longer run go, the
    user's other files stay."""
    folder = tmp_path / "samples"
    folder.mkdir()
    victim = _plant(folder / "sample_0000000.png", tmp_path)
    (folder / "sample_0000099.png").write_bytes(b"stale")
    (folder / "notes.txt").write_text("mine")
    args = ["generate", "-m", str(models["image"]), "-n", "3", "-o", str(folder)]
    _ok([*args, "--overwrite"])
    assert victim.read_bytes() == VICTIM
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["notes.txt", "sample_0000000.png", "sample_0000001.png", "sample_0000002.png"]
    assert not (folder / "sample_0000000.png").is_symlink()
    assert Image.open(folder / "sample_0000000.png").size == (4, 4)


def test_a_new_or_empty_folder_needs_no_flag(models, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new"):
        _ok(["generate", "-m", str(models["image"]), "-n", "2", "-o", str(folder)])
        assert len(list(folder.glob("sample_*.png"))) == 2
        assert not list(folder.glob(".*.tmp"))  # no temp file left behind


def test_the_atomic_writer_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    from ganforge.io import atomic_path

    out = tmp_path / "out.bin"
    victim = _plant(out, tmp_path)
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"new")
    assert victim.read_bytes() == VICTIM
    assert not out.is_symlink() and out.read_bytes() == b"new"
