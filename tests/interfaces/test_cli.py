"""`ganforge generate | interpolate | info`: outputs, and one-line errors with exit code 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import export_models
from typer.testing import CliRunner

from ganforge.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ganforge.models import GeneratorSpec

    out = tmp_path_factory.mktemp("cli")
    specs = {
        "uncond": GeneratorSpec(arch="dcgan", nz=16, sample_shape=(1, 16, 16), ngf=8, ndf=8),
        "cond": GeneratorSpec(
            arch="dcgan",
            nz=8,
            sample_shape=(3, 16, 16),
            ngf=8,
            ndf=8,
            num_classes=3,
            class_names=("cat", "dog", "fox"),
        ),  # fmt: skip
    }
    extra = {"weights": "ema", "run_id": "run42"}
    return export_models(out, specs, extra=extra, opset=17, wide_init=False)


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_generate_writes_a_grid(models, tmp_path: Path) -> None:
    out = tmp_path / "samples.png"
    _ok(["generate", "--model", str(models["uncond"]), "--num", "6", "--out", str(out)])
    with Image.open(out) as picture:
        assert picture.size == (3 * 18 + 2, 2 * 18 + 2) and picture.mode == "L"
    out2 = tmp_path / "cond.png"
    args = ["generate", "-m", str(models["cond"]), "-n", "4", "--label", "2", "-o", str(out2)]
    _ok([*args, "--nrow", "4", "--provider", "cpu"])
    with Image.open(out2) as picture:
        assert picture.size == (4 * 18 + 2, 18 + 2) and picture.mode == "RGB"


def test_interpolate_writes_rows_of_steps(models, tmp_path: Path) -> None:
    out = tmp_path / "interp.png"
    args = ["interpolate", "--model", str(models["uncond"]), "--steps", "5", "--rows", "3"]
    _ok([*args, "--method", "slerp", "--out", str(out)])
    with Image.open(out) as picture:
        assert picture.size == (5 * 18 + 2, 3 * 18 + 2)


def test_info_shows_metadata(models) -> None:
    output = _ok(["info", "--model", str(models["cond"])])
    for text in ("dcgan", "cat, dog, fox", "run42", "ema", "[3, 16, 16]"):
        assert text in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{missing}"], "no such model file"),
        (["--model", "{junk}"], "not a loadable ONNX model"),
        (["--model", "{uncond}", "--label", "1"], "has no classes (it was trained without"),
        (["--model", "{cond}", "--label", "3"], "out of range"),
        (["--model", "{cond}", "--num", "0"], "--num = 0"),
        (["--model", "{uncond}", "--num", "-2"], "must be a positive integer"),
        (["--model", "{uncond}", "--out", "{tmp}/x.jpg"], ".png"),
    ],
)
def test_generate_errors_are_one_line(models, tmp_path: Path, args, message) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    names = {**{k: str(v) for k, v in models.items()}, "missing": str(tmp_path / "no.onnx")}
    names.update(junk=str(junk), tmp=str(tmp_path))
    result = runner.invoke(app, ["generate", *[a.format(**names) for a in args]])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("error:")


def test_no_args_prints_help() -> None:
    result = runner.invoke(app, [])
    assert "generate" in result.output and "interpolate" in result.output


def test_generate_in_a_subprocess_never_imports_torch(models, tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    code = (
        "import sys\n"
        "from ganforge.cli import app\n"
        f"sys.argv = ['ganforge', 'generate', '--model', {str(models['uncond'])!r},"
        f" '--num', '4', '--out', {str(out)!r}]\n"
        "try:\n"
        "    app()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "wrote 4 samples" in result.stdout
    assert np.asarray(Image.open(out)).ndim == 2


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ganforge")
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    result = subprocess.run(
        [str(script), "generate", "--model", str(tmp_path / "none.onnx")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none.onnx'}: no such model file"
    ]
