"""Hostile requests to `ganforge generate | interpolate`: bounded, one-line errors, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ganforge.cli import MAX_GRID, app

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ganforge.export import build_metadata, export_generator
    from ganforge.models import GeneratorSpec, build_generator

    out = tmp_path_factory.mktemp("hostile_cli")
    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8)
    meta = build_metadata(spec, {"weights": "ema", "run_id": "run1"})
    return export_generator(build_generator(spec).eval(), spec, out / "g.onnx", 17, meta)


def _with_props(model: Path, dest: Path, **changes: str) -> Path:
    """A copy of `model` whose ganforge metadata_props say something else."""
    import onnx

    proto = onnx.load(str(model))
    for prop in proto.metadata_props:
        if prop.key in changes:
            prop.value = changes[prop.key]
    onnx.save(proto, str(dest))
    return dest


def _fails(args: list[str], *words: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    out = result.output.strip()
    assert out.startswith("error:") and "Traceback" not in out, out
    assert len(out.splitlines()) == 1 or out.count("error:") == 1, out
    for word in words:
        assert word in " ".join(out.split()), f"{word!r} not in {out!r}"
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return out


CASES = {
    "negative-seed": (["generate", "--seed", "-1", "-o", "{tmp}/a.png"], ["--seed = -1"]),
    "negative-seed-interpolate": (
        ["interpolate", "--seed", "-5", "-o", "{tmp}/a.png"], ["--seed = -5"],
    ),
    "missing-folder": (
        ["generate", "-o", "{tmp}/nope/a.png"], ["nope", "does not exist"],
    ),
    "parent-is-a-file": (
        ["generate", "-o", "{tmp}/file.txt/a.png"], ["file.txt", "does not exist"],
    ),
    "grid-too-big": (
        ["generate", "--num", "100000", "-o", "{tmp}/a.png"],
        ["--num = 100000", f"at most {MAX_GRID}", "folder"],
    ),
    "folder-too-big": (
        ["generate", "--num", "2000000", "-o", "{tmp}/many"], ["--num = 2000000", "1000000"],
    ),
    "interpolate-too-big": (
        ["interpolate", "--rows", "1000", "--steps", "100", "-o", "{tmp}/a.png"],
        ["--rows 1000 x --steps 100", f"at most {MAX_GRID}"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_is_one_line(case: str, model: Path, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    args, words = CASES[case]
    args = [a.format(tmp=tmp_path) for a in args]
    _fails([*args, "--model", str(model)], *words)
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "many").exists()


@pytest.mark.parametrize(
    "props",
    [
        {"sample_shape": "[2]", "image_shape": "[2]", "kind": "points"},  # image graph, 1-D
        {"sample_shape": "[1, 8, 8]", "image_shape": "[1, 8, 8]"},
        {"nz": "12"},
    ],
)
def test_metadata_that_does_not_match_the_graph_is_one_line(
    props: dict[str, str], model: Path, tmp_path: Path
) -> None:
    bad = _with_props(model, tmp_path / "bad.onnx", **props)
    out = tmp_path / "x.png"
    _fails(["generate", "-m", str(bad), "-o", str(out)], "bad.onnx", "does not match")
    _fails(["interpolate", "-m", str(bad), "-o", str(out)], "bad.onnx", "does not match")
    assert not out.exists()


def test_large_requests_stream_to_a_folder_with_the_same_samples(
    model: Path, tmp_path: Path
) -> None:
    """A folder gets one PNG per image, drawn in batches; a seed gives the grid's images."""
    from ganforge.cli import STREAM_BATCH
    from ganforge.inference import Generator

    num = STREAM_BATCH + 37  # more than one batch, the last one partial
    folder = tmp_path / "many"
    result = runner.invoke(
        app, ["generate", "-m", str(model), "-n", str(num), "--seed", "3", "-o", str(folder)]
    )
    assert result.exit_code == 0, result.output
    files = sorted(folder.glob("sample_*.png"))
    assert len(files) == num
    expected = Generator.load(model, provider="cpu").sample(num, seed=3)
    for index in (0, STREAM_BATCH - 1, STREAM_BATCH, num - 1):
        got = np.asarray(Image.open(files[index]))
        np.testing.assert_array_equal(got, expected[index][..., 0])


def test_the_largest_grid_is_allowed(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "max.png"
    result = runner.invoke(app, ["generate", "-m", str(model), "-n", str(MAX_GRID), "-o", str(out)])
    assert result.exit_code == 0, result.output
    side = int(np.sqrt(MAX_GRID)) * 18 + 2
    assert Image.open(out).size == (side, side)


def test_metadata_props_fixture_is_a_ganforge_model(model: Path) -> None:
    """Guard for the cases above: the untouched model loads and its props are what we edit."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert json.loads(props["sample_shape"]) == [1, 16, 16]
    assert props["nz"] == "8"
