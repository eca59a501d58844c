"""A full disk in any stage: one line naming the path, a non-zero exit, the outs as they were.

The stages run as `dvc repro` runs them (`python -m pipeline.<stage>`), with one write made to
fail as on a full disk: Python's file write raises OSError(ENOSPC) with no file name, or
torch.save fails in its C++ zip writer with its RuntimeError ("unexpected pos").
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.full_disk import named_back, no_space_line

REPO = Path(__file__).resolve().parents[2]
OUTS = (Path("models/generator.onnx"), Path("reports/export.json"), Path("data/prepared"))

# A write to a file whose path holds MARKER fails as on a full disk: the file opens, then its
# write raises what the kernel's ENOSPC becomes in Python (no file name).
FULL_ON_WRITE = """
import builtins, errno, io, os
_open = io.open

class _Full:
    def __init__(self, f):
        self._f = f
    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __getattr__(self, name):
        return getattr(self._f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._f.close()

def _opener(file, mode="r", *args, **kwargs):
    f = _open(file, mode, *args, **kwargs)
    named = isinstance(file, (str, os.PathLike)) and MARKER in os.fspath(file)
    return _Full(f) if named and any(c in mode for c in "wax+") else f

builtins.open = io.open = _opener
"""
# torch.save of a file whose path holds MARKER fails as its zip writer does on a full disk.
TORCH_FULL = """
import os, torch
_save = torch.save

def _full(obj, f, *args, **kwargs):
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "")
    if MARKER in str(name):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 44 vs 43")
    return _save(obj, f, *args, **kwargs)

torch.save = _full
"""


def run_stage(stage: str, cwd: Path, inject: str, marker: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.<stage>` in `cwd` with `inject` (given MARKER) run first."""
    code = f"MARKER = {marker!r}\n{inject}\nimport runpy\n"
    code += f"runpy.run_module('pipeline.{stage}', run_name='__main__', alter_sys=True)\n"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
    env["PYTHONWARNINGS"] = "ignore"  # what is checked is the stage's own output
    env["OMP_NUM_THREADS"] = "1"
    env.pop("DVC_EXP_NAME", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def files(root: Path, *outs: str) -> dict[str, bytes]:
    """The bytes of every file of `outs` (files or folders) under `root`."""
    found = {}
    for out in outs:
        path = root / out
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            found[str(file.relative_to(root))] = file.read_bytes()
    return found


def assert_one_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.stderr.strip().splitlines() == [line], result.stderr


# ------------------------------------------------------------------ the line and its path
def test_a_staged_or_temp_name_is_named_back_to_its_out() -> None:
    staged = Path("models/.generator.onnx.k2j1.staged/generator.onnx")
    assert named_back(staged, OUTS) == Path("models/generator.onnx")
    inner = Path("reports/.export.json.x.staged/.export.json.y.tmp")
    assert named_back(inner, OUTS) == Path("reports/export.json")
    assert named_back(Path("data/.prepared.tmp-abc/train.pt"), OUTS) == Path(
        "data/prepared/train.pt"
    )
    assert named_back(Path("/elsewhere/mlflow.db"), OUTS) == Path("/elsewhere/mlflow.db")


def test_only_a_full_disk_gets_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    staged = "models/.generator.onnx.k2j1.staged/generator.onnx"
    full = OSError(errno.ENOSPC, "No space left on device", staged)
    assert no_space_line("export", full, OUTS) == (
        "export: no space left on device at models/generator.onnx: free space and rerun"
    )
    quota = OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp_path / "metrics/x.json"))
    assert "at metrics/x.json: free space" in str(no_space_line("train", quota, OUTS))
    try:  # raised while handling a full disk: the disk is what to fix
        try:
            raise full
        except OSError as err:
            raise ValueError("could not finish") from err
    except ValueError as wrapped:
        assert "models/generator.onnx" in str(no_space_line("export", wrapped, OUTS))
    assert no_space_line("export", OSError(errno.EACCES, "Permission denied", staged), OUTS) is None
    assert no_space_line("export", RuntimeError("shapes do not match"), OUTS) is None


def test_without_a_file_name_the_out_being_written_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def save(obj: object, path: Path) -> None:  # the frame that holds the path, as torch_save
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 10")

    try:
        save({}, Path("models/.generator.onnx.abc.tmp"))
    except RuntimeError as err:
        line = no_space_line("export", err, OUTS)
    assert line == "export: no space left on device at models/generator.onnx: free space and rerun"
    try:  # nowhere named: the stage's main out
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as err:
        assert "at models/generator.onnx:" in str(no_space_line("export", err, OUTS))


def test_a_full_disk_under_the_tracking_store_is_the_same_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from pipeline.tracking import tracking_error

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    err = sqlite3.OperationalError("database or disk is full")
    assert str(tracking_error(err, "evaluate")) == (
        f"evaluate: no space left on device at {tmp_path / 'mlflow.db'}: free space and rerun"
    )
    assert "make" in str(tracking_error(sqlite3.OperationalError("database is locked"), "x"))


def test_a_full_store_inside_a_run_is_the_same_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow passes the store's error on in its own exception, mid-stage."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.stage import StageError
    from pipeline.tracking import mlflow_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    said = "(sqlite3.OperationalError) database or disk is full"
    with pytest.raises(StageError) as stopped, mlflow_run("train", "full", "n") as run:
        raise MlflowException(said)
    assert str(stopped.value) == (
        f"train: no space left on device at {tmp_path / 'mlflow.db'}: free space and rerun"
    )
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


# ------------------------------------------------------------------ the stages
def test_prepare_on_a_full_disk(tmp_path: Path) -> None:
    from pipeline import prepare

    params = {"seed": 0, "prepare": {"dataset": "ring_2d", "num_points": 400}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        prepare.main()
    before = files(tmp_path, "data", "metrics")
    params["seed"] = 1  # a success would change every out
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage("prepare", tmp_path, FULL_ON_WRITE, "meta.json")
    line = "prepare: no space left on device at data/prepared/meta.json: free space and rerun"
    assert_one_line(result, line)
    assert files(tmp_path, "data", "metrics") == before


def test_train_on_a_full_disk(tmp_path: Path, prepared_digits_16: Path) -> None:
    from pipeline import train

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(prepared_digits_16)
    train_params = dict(nz=8, ngf=8, ndf=8, batch_size=32, max_steps=4, log_every=2,
                        checkpoint_every=2, num_sample_images=4, device="cpu")  # fmt: skip
    params = {"seed": 0, "mlflow": {"experiment": "full"}, "train": train_params}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        train.main()
    outs = ("models/generator.pt", "models/mlflow_run.json", "metrics/train.json",
            "reports/train.json", "plots/train_history.csv", "plots/samples")  # fmt: skip
    before = files(tmp_path, *outs)
    # The finished checkpoint is picked up; then saving the generator meets the full disk.
    result = run_stage("train", tmp_path, TORCH_FULL, "generator.pt")
    line = "train: no space left on device at models/generator.pt: free space and rerun"
    assert_one_line(result, line)
    assert files(tmp_path, *outs) == before
    assert not list((tmp_path / "models").glob(".generator.pt.*"))
    assert json.loads((tmp_path / "models/mlflow_run.json").read_text()) == json.loads(
        before["models/mlflow_run.json"]
    )


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """A workspace with a tiny generator, its MLflow run, and the outs of one export."""
    import mlflow

    from ganforge.models import GeneratorSpec, build_generator, save_generator
    from pipeline import export

    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8)
    params = {"mlflow": {"experiment": "full", "registered_model": None},
              "export": {"parity_batches": [1]}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("full")
        with mlflow.start_run() as run:
            pass
        (tmp_path / "models").mkdir()
        save_generator("models/generator.pt", spec, build_generator(spec))
        (tmp_path / "models/mlflow_run.json").write_text(json.dumps({"run_id": run.info.run_id}))
        export.main()
    return tmp_path


def test_export_on_a_full_disk(export_dir: Path) -> None:
    outs = ("models/generator.onnx", "metrics/export.json", "reports/export.json")
    before = files(export_dir, *outs)
    result = run_stage("export", export_dir, FULL_ON_WRITE, "export.json")
    assert_one_line(
        result, "export: no space left on device at reports/export.json: free space and rerun"
    )
    assert files(export_dir, *outs) == before
    assert not list(export_dir.rglob("*.staged")) and not list(export_dir.rglob(".*.tmp"))


def test_the_stages_outs_are_where_dvc_yaml_puts_them() -> None:
    """The path a full disk names falls back to a stage's outs: they must be dvc.yaml's."""
    from pipeline.paths import STAGE_OUTS

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, outs in STAGE_OUTS.items():
        declared = set()
        for kind in ("outs", "metrics"):
            for entry in stages[name].get(kind, []):
                declared.add(entry if isinstance(entry, str) else next(iter(entry)))
        assert {str(p) for p in outs} <= declared | {"models/generator_fp16.onnx"}, name
