"""An ONNX file from a stranger: no file outside it is read, declared sizes and metadata are
bounded, every bad value ends in one line (library: ModelFileError; CLI: exit 1, no traceback)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hostile_models import image_model, with_external_data
from typer.testing import CliRunner

from ganforge.cli import app
from ganforge.inference import Generator, GeneratorInputError, ModelFileError
from ganforge.inference.metadata import MAX_NZ, MAX_SAMPLE_VALUES
from ganforge.inference.modelfile import MAX_METADATA_BYTES

runner = CliRunner()
SECRET = np.arange(64, dtype=np.float32) + 1000.0  # what a leak would return


@pytest.fixture()
def plain(tmp_path: Path) -> Path:
    """A working generator alone in its folder (tmp_path/models/g.onnx)."""
    (tmp_path / "models").mkdir()
    return image_model(tmp_path / "models" / "g.onnx")


def _one_line_failure(args: list[str], *words: str) -> str:
    result = runner.invoke(app, args)
    out = result.output.strip()
    assert result.exit_code == 1, out
    assert out.startswith("error:") and "Traceback" not in out, out
    assert len(out.splitlines()) == 1, out
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for word in words:
        assert word in out, f"{word!r} not in {out!r}"
    return out


def test_the_handmade_model_loads_and_samples(plain: Path) -> None:
    """Guard: the model every case below alters is a working ganforge generator."""
    gen = Generator.load(plain, "cpu")
    assert gen.sample(3, seed=1).shape == (3, 4, 4, 1)
    assert gen.model_bytes == plain.read_bytes()


@pytest.mark.parametrize("case", ["absolute", "dotdot", "symlink", "inside", "sparse"])
def test_external_data_is_refused_before_any_session(plain: Path, tmp_path: Path, case) -> None:
    """Absolute, ../ and symlinked locations, and even a file beside the model: refused."""
    outside = tmp_path / "secret.bin"
    outside.write_bytes(SECRET.tobytes())
    folder = plain.parent
    if case == "absolute":
        location = str(outside)
    elif case in ("dotdot", "sparse"):
        location = "../secret.bin"
    elif case == "symlink":
        (folder / "data.bin").symlink_to(outside)
        location = "data.bin"
    else:  # a regular file next to the model: onnxruntime itself would read it
        (folder / "data.bin").write_bytes(SECRET.tobytes())
        location = "data.bin"
    bad = with_external_data(plain, folder / "bad.onnx", location, sparse=case == "sparse")
    with pytest.raises(ModelFileError, match="keeps its data in another file") as err:
        Generator.load(bad, "cpu")
    assert len(str(err.value).splitlines()) == 1 and "bad.onnx" in str(err.value)
    _one_line_failure(["info", "-m", str(bad)], "another file")
    if case == "inside":
        # Control: plain onnxruntime does load this file and returns the side file's bytes,
        # so the refusal above is ganforge's own check.
        session = ort.InferenceSession(str(bad), providers=["CPUExecutionProvider"])
        out = session.run(None, {"z": np.eye(4, dtype=np.float32)})[0]
        assert out.reshape(4, -1)[0, 0] == SECRET[0]


def test_epcontext_nodes_are_refused(plain: Path, tmp_path: Path) -> None:
    proto = onnx.load(str(plain))
    node = proto.graph.node.add()
    node.op_type, node.name, node.domain = "EPContext", "ctx", "com.microsoft"
    onnx.save(proto, str(tmp_path / "ctx.onnx"))
    with pytest.raises(ModelFileError, match="EPContext"):
        Generator.load(tmp_path / "ctx.onnx", "cpu")


def test_huge_metadata_is_refused_fast_and_info_is_bounded(tmp_path: Path) -> None:
    """10 MB of metadata: one line in well under 2 s; the most allowed: `info` < 2 s."""
    huge = image_model(tmp_path / "huge.onnx", props={"junk": "x" * 10_000_000})
    start = time.monotonic()
    _one_line_failure(["info", "-m", str(huge)], "metadata is", str(MAX_METADATA_BYTES))
    assert time.monotonic() - start < 2.0
    # Just under the limit, as one long value and as many short entries.
    big = {"a-long": "[link=https://evil.example]y[/link]" * 5000}
    big.update({f"k{i:05d}": "v" for i in range(2000)})
    assert sum(len(k) + len(v) for k, v in big.items()) < MAX_METADATA_BYTES
    near = image_model(tmp_path / "near.onnx", props=big)
    start = time.monotonic()
    result = runner.invoke(app, ["info", "-m", str(near)])
    took = time.monotonic() - start
    assert result.exit_code == 0, result.output
    assert took < 2.0, f"info took {took:.1f} s"
    assert "more characters" in result.output and "more metadata entries" in result.output
    assert "[link=https://evil.example]" in result.output  # shown as text, not a link


BAD_PROPS = {
    "nz-0": ({"nz": "0"}, "nz = 0"),
    "nz-huge": ({"nz": "4294967294"}, f"1..{MAX_NZ}"),
    "nz-digits": ({"nz": "9" * 5000}, "bad ganforge metadata"),
    "shape-huge": (
        {"sample_shape": "[3, 8192, 8192]"},
        f"over the limit of {MAX_SAMPLE_VALUES}",
    ),
    "shape-zero": ({"sample_shape": "[1, 0, 4]"}, "at least 1"),
    "shape-not-list": ({"sample_shape": "{}"}, "expected a JSON list"),
    "shape-nested": ({"sample_shape": "[" * 100_000 + "]" * 100_000}, "bad ganforge metadata"),
    "channels-5": ({"sample_shape": "[5, 4, 4]"}, "5 channels"),
    "range-equal": ({"value_range": "[0, 0]"}, "value_range = [0, 0]"),
    "range-one": ({"value_range": "[1]"}, "value_range = [1]"),
    "range-dict": ({"value_range": "{}"}, "value_range = {}"),
    "range-nan": ({"value_range": "[NaN, 1]"}, "value_range = [nan, 1]"),
    "range-inf": ({"value_range": "[-Infinity, 1]"}, "value_range"),
    "range-big-int": ({"value_range": "[0, " + "9" * 400 + "]"}, "value_range"),
    "range-reversed": ({"value_range": "[1, -1]"}, "lo < hi"),
    "classes-huge": ({"num_classes": "10000000"}, "num_classes = 10000000"),
    "names-not-list": ({"class_names": '"abc"'}, "expected a JSON list"),
}


@pytest.mark.parametrize("case", list(BAD_PROPS))
def test_bad_metadata_is_one_line(case: str, tmp_path: Path) -> None:
    props, words = BAD_PROPS[case]
    path = image_model(tmp_path / "m.onnx", props=props)
    with pytest.raises(ModelFileError, match="bad ganforge metadata") as err:
        Generator.load(path, "cpu")
    assert len(str(err.value)) < 400 and "\n" not in str(err.value)
    for command in (["generate", "-o", str(tmp_path / "a.png")], ["info"]):
        _one_line_failure([*command, "-m", str(path)], words)
    assert not (tmp_path / "a.png").exists()


def test_large_declared_samples_run_in_small_batches(tmp_path: Path) -> None:
    """The largest allowed sample (3 x 1024 x 1024) runs with bounded memory per run."""
    path = image_model(tmp_path / "big.onnx", nz=2, shape=(3, 1024, 1024))
    gen = Generator.load(path, "cpu")
    assert gen.batch_size * 3 * 1024 * 1024 <= 2**25
    assert gen.sample(1, seed=0).shape == (1, 1024, 1024, 3)
    out = tmp_path / "grid.png"
    _one_line_failure(["generate", "-m", str(path), "-n", "200", "-o", str(out)], "at most")
    assert not out.exists()


@pytest.mark.parametrize(
    "label",
    [2**63, 2**64 + 1, -(2**63) - 1, 10**5000],
    ids=["2^63", "2^64+1", "-2^63-1", "10^5000"],
)
def test_labels_past_int64_are_one_line(label: int, tmp_path: Path) -> None:
    path = image_model(tmp_path / "c.onnx", num_classes=3)
    gen = Generator.load(path, "cpu")
    with pytest.raises(GeneratorInputError, match="out of range"):
        gen.sample(2, labels=label)
    with pytest.raises(GeneratorInputError, match="out of range"):
        gen.sample(2, labels=[0, label])
    with pytest.raises(GeneratorInputError, match="out of range"):
        gen.labels_for(1, np.array([2**64 - 1], dtype=np.uint64))
    if label < 10**100:  # a 5000-digit option is refused by Python's int() already
        out = tmp_path / "a.png"
        args = ["generate", "-m", str(path), "--label", str(label), "-o", str(out)]
        _one_line_failure(args, "out of range")
        _one_line_failure(["interpolate", *args[1:]], "out of range")
        _one_line_failure([*args[:-1], str(tmp_path / "many")], "out of range")
        assert not out.exists() and not (tmp_path / "many").exists()


CONTROL = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\x1b[2J\u202e"


def test_markup_and_control_characters_are_printed_as_text(tmp_path: Path) -> None:
    """Paths and metadata reach the terminal as they are: no markup, no escape sequences."""
    odd = tmp_path / "a[" / "x][bold]y.png"  # the issue's `-o "a[/x].png"`, and more
    odd.parent.mkdir()
    model = image_model(
        tmp_path / "m.onnx", props={"arch": "[link=https://evil.example]x[/link]" + CONTROL}
    )
    result = runner.invoke(app, ["generate", "-m", str(model), "-n", "2", "-o", str(odd)])
    assert result.exit_code == 0, result.output
    assert odd.is_file() and str(odd) in "".join(result.output.split())
    result = runner.invoke(app, ["info", "-m", str(model)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "[link=https://evil.example]x[/link]" in result.output and "\\x1b" in result.output
    # An error naming an odd path: one line, escaped.
    bad = tmp_path / ("x\x1b[31m[/y]" + ".png")
    out = _one_line_failure(["generate", "-m", str(bad), "-o", str(odd)], "no such model file")
    assert "\x1b" not in out and "\\x1b[31m[/y].png" in out


def test_control_characters_in_error_values_are_escaped(tmp_path: Path) -> None:
    path = image_model(tmp_path / "m.onnx", props={"value_range": json.dumps(["\x1b[2J", 1])})
    with pytest.raises(ModelFileError) as err:
        Generator.load(path, "cpu")
    assert "\x1b" not in str(err.value) and "\\x1b" in str(err.value)
