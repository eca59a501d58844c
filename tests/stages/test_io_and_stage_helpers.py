"""Atomic outs and the stage helpers' messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganforge.io import atomic_path, write_json
from pipeline.paths import GENERATOR_PATH, PREPARED_DIR
from pipeline.stage import StageError, require_upstream
from pipeline.tracking import tracking_uri


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_missing_upstream_names_the_stage_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError, match=r"models/generator.pt is missing: run `dvc repro train`"):
        require_upstream(GENERATOR_PATH)
    with pytest.raises(StageError, match="dvc repro prepare"):
        require_upstream(PREPARED_DIR / "train.pt")


def test_queued_experiments_track_into_the_repository_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    workspace.mkdir(parents=True)
    monkeypatch.chdir(workspace)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == f"sqlite:///{(tmp_path / 'repo').resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking_uri() == "http://mlflow.example:5000"


def test_atomic_outs_are_readable_like_ordinary_files(tmp_path: Path) -> None:
    reference = tmp_path / "plain.txt"
    reference.write_text("x")
    target = tmp_path / "atomic.json"
    write_json(target, {})
    assert target.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
