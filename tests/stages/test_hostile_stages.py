"""Hostile inputs to the evaluate and export stages: one line naming the file and the fix.

Each case breaks one thing in a workspace where every stage has already run once, runs the
stage and checks (1) it exits with a one-line message naming the culprit and the fix, not a
traceback, and (2) the outs of the earlier run are byte for byte as they were.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

EVAL_OUTS = (
    "metrics/eval.json",
    "reports/eval.json",
    "plots/eval_samples.png",
    "plots/class_histogram.csv",
)
EXPORT_OUTS = ("models/generator.onnx", "metrics/export.json", "reports/export.json")

PARAMS = {
    "seed": 0,
    "mlflow": {"experiment": "hostile", "registered_model": "gf-hostile"},
    "classifier": {"epochs": 1, "width": 8, "feature_dim": 16, "device": "cpu"},
    "train": {
        "nz": 16, "ngf": 8, "ndf": 8, "batch_size": 32, "epochs": 1, "max_steps": 2,
        "checkpoint_every": 2, "log_every": 1, "num_sample_images": 4, "device": "cpu",
    },
    "evaluate": {
        "num_samples": 60, "batch_size": 60, "kid_subset_size": 20, "kid_subsets": 2,
        "is_splits": 2, "device": "cpu",
    },
    "export": {"parity_batches": [1, 2]},
}  # fmt: skip


def _run(stage: str) -> None:
    importlib.import_module(f"pipeline.{stage}").main()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, prepared_digits_16: Path) -> Path:
    """A workspace after classifier, train, evaluate and export ran once (tiny settings)."""
    root = tmp_path_factory.mktemp("hostile") / "ws"
    (root / "data").mkdir(parents=True)
    shutil.copytree(prepared_digits_16, root / "data" / "prepared")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        for stage in ("classifier", "train", "evaluate", "export"):
            _run(stage)
    return root


@pytest.fixture()
def ws(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the built workspace, as the current directory."""
    work = tmp_path / "ws"
    shutil.copytree(built, work, symlinks=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    return work


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p: (root / p).read_bytes() for p in EVAL_OUTS + EXPORT_OUTS}


def _write(path: str, data: bytes | str) -> Callable[[Path], None]:
    def breaks(root: Path) -> None:
        target = root / path
        target.write_bytes(data if isinstance(data, bytes) else data.encode())

    return breaks


def _truncate(path: str, size: int) -> Callable[[Path], None]:
    def breaks(root: Path) -> None:
        target = root / path
        target.write_bytes(target.read_bytes()[:size])

    return breaks


def _random_bytes(path: str) -> Callable[[Path], None]:
    import random

    return _write(path, random.Random(0).randbytes(100_000))


def _read_only_store(root: Path) -> None:
    # Tests run as root here, where chmod does not stop writes; SQLite's read-only mode does.
    import os

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///file:{root / 'mlflow.db'}?mode=ro&uri=true"


def _inception_garbage(root: Path) -> None:
    (root / "inception.pth").write_bytes(b"garbage\n")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["evaluate"] |= {"backend": "inception", "inception_weights": "inception.pth"}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


# (stage, how the workspace is broken, words the one-line message must hold)
CASES = {
    "evaluate-corrupt-generator": (
        "evaluate", _truncate("models/generator.pt", 1000),
        ["models/generator.pt", "dvc checkout", "dvc repro train"],
    ),
    "export-garbage-generator": (
        "export", _write("models/generator.pt", "garbage"),
        ["models/generator.pt", "dvc checkout", "dvc repro train"],
    ),
    "export-run-file-garbage": (
        "export", _write("models/mlflow_run.json", "not json{"),
        ["models/mlflow_run.json", "not readable JSON", "dvc repro train"],
    ),
    "export-run-file-empty-object": (
        "export", _write("models/mlflow_run.json", "{}"),
        ["models/mlflow_run.json", "no run_id", "dvc checkout"],
    ),
    "evaluate-run-file-list": (
        "evaluate", _write("models/mlflow_run.json", "[1, 2]"),
        ["models/mlflow_run.json", "no run_id", "dvc checkout"],
    ),
    "evaluate-meta-json-list": (
        "evaluate", _write("data/prepared/meta.json", "[1, 2]"),
        ["data/prepared/meta.json", "JSON list", "dvc repro prepare"],
    ),
    "export-truncated-mlflow-db": (
        "export", _truncate("mlflow.db", 5000),
        ["mlflow.db", "malformed", "mv "],
    ),
    "evaluate-random-bytes-mlflow-db": (
        "evaluate", _random_bytes("mlflow.db"),
        ["mlflow.db", "not a database", "mv "],
    ),
    "evaluate-read-only-mlflow-db": (
        "evaluate", _read_only_store,
        ["mlflow.db", "readonly", "writable"],
    ),
    "export-read-only-mlflow-db": (
        "export", _read_only_store,
        ["mlflow.db", "readonly", "writable"],
    ),
    "evaluate-garbage-inception-weights": (
        "evaluate", _inception_garbage,
        ["evaluate.inception_weights = inception.pth", "backend: classifier"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_one_line_and_outs_are_kept(
    case: str, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage, breaks, words = CASES[case]
    before = _snapshot(ws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ws / 'mlflow.db'}")  # restored after
    breaks(ws)
    with pytest.raises(SystemExit) as exit_info:
        _run(stage)
    message = str(exit_info.value.code)
    # SystemExit with a string: Python prints it alone and exits 1 (no traceback).
    assert isinstance(exit_info.value.code, str), exit_info.value.code
    assert "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert _snapshot(ws) == before, "a failed stage changed its outs"
    assert not list(ws.rglob("*.staged")) and not list(ws.rglob(".*.tmp"))


@pytest.mark.parametrize("stage", ["evaluate", "export"])
def test_a_failing_mlflow_step_leaves_the_outs_as_they_were(
    stage: str, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage computes everything, then MLflow fails at its last step: no out changes."""
    import mlflow
    from mlflow.exceptions import MlflowException

    before = _snapshot(ws)
    inodes = {p: (ws / p).stat().st_ino for p in EVAL_OUTS + EXPORT_OUTS}
    # The seed changes evaluate's samples: a success would change its outs. Export is
    # deterministic (same G, same file): a success replaces its outs by new files.
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["seed"] = 1
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    target = "log_artifact" if stage == "evaluate" else "log_metrics"

    def broken(*args, **kwargs):
        raise MlflowException("the tracking server went away")

    monkeypatch.setattr(mlflow, target, broken)
    with pytest.raises(SystemExit, match="went away"):
        _run(stage)
    assert _snapshot(ws) == before
    assert not list(ws.rglob("*.staged"))

    monkeypatch.undo()  # the same run, MLflow working: now the outs do change
    monkeypatch.chdir(ws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ws / 'mlflow.db'}")
    _run(stage)
    if stage == "evaluate":
        after = _snapshot(ws)
        assert any(after[p] != before[p] for p in EVAL_OUTS)
    else:
        assert all((ws / p).stat().st_ino != inodes[p] for p in EXPORT_OUTS)
