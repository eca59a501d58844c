"""`dvc repro` after hostile params.yaml edits: the trained model is never deleted unsaid.

DVC removes a stage's outs before it runs the stage. A bad params.yaml must therefore be
refused either by DVC before anything runs, or by the stage's own validation with outs that
persist; where DVC must remove an out (data/prepared), fixing params.yaml restores it from
the run cache without rerunning anything.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tiny_repo import dvc, env_for, make_clone, run

pytestmark = pytest.mark.slow

TRAIN_OUTS = (
    "models/generator.pt",
    "models/mlflow_run.json",
    "metrics/train.json",
    "plots/train_history.csv",
)
TINY = {
    "prepare": {"image_size": 16},
    "train": {
        "ngf": 4, "ndf": 4, "nz": 8, "batch_size": 32, "epochs": 1, "max_steps": 4,
        "checkpoint_every": 2, "log_every": 2, "num_sample_images": 4, "device": "cpu",
    },
}  # fmt: skip


def _dvc(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(dvc(*args), work, env, check=False)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """A git + DVC copy of the project after `dvc repro train` on tiny params."""
    base = tmp_path_factory.mktemp("dvc_hostile")
    env = env_for(f"sqlite:///{base / 'mlflow.db'}")
    work = make_clone(base / "repo", env, tiny=TINY)
    done = _dvc(work, env, "repro", "train")
    assert done.returncode == 0, done.stdout + done.stderr
    return work, env, (work / "params.yaml").read_text()


def _snapshot(work: Path) -> dict[str, bytes]:
    return {p: (work / p).read_bytes() for p in TRAIN_OUTS}


def _edit(change: Callable[[dict], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        data = yaml.safe_load(text)
        change(data)
        return yaml.safe_dump(data, sort_keys=False)

    return edit


# (how params.yaml is broken, words the output of the failed `dvc repro` must hold)
BROKEN = {
    "train-section-is-a-list": (
        _edit(lambda d: d.update(train=[1, 2])), ["params.yaml", "train"],
    ),
    "train-section-is-a-number": (
        _edit(lambda d: d.update(train=5)), ["params.yaml", "train"],
    ),
    "unknown-train-key": (
        _edit(lambda d: d["train"].update(learning_rate=0.1)), ["train.learning_rate"],
    ),
    "mlflow-key-removed": (
        _edit(lambda d: d["mlflow"].pop("experiment")), ["mlflow.experiment", "missing"],
    ),
    "mlflow-section-removed": (
        _edit(lambda d: d.pop("mlflow")), ["mlflow", "missing"],
    ),
    "seed-removed": (_edit(lambda d: d.pop("seed")), ["seed", "missing"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_params_file_keeps_the_trained_model(
    case: str, repo: tuple[Path, dict[str, str], str]
) -> None:
    work, env, good = repo
    before = _snapshot(work)
    breaks, words = BROKEN[case]
    (work / "params.yaml").write_text(breaks(good))
    try:
        failed = _dvc(work, env, "repro", "train")
        output = failed.stdout + failed.stderr
        assert failed.returncode != 0, output
        for word in words:
            assert word in output, f"{word!r} not in:\n{output}"
        assert "Traceback" not in output, output
        assert _snapshot(work) == before, "dvc repro changed or deleted the trained outs"
    finally:
        (work / "params.yaml").write_text(good)
    again = _dvc(work, env, "repro", "train")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Running stage 'train'" not in again.stdout  # nothing to redo
    assert _snapshot(work) == before


def test_a_removed_train_key_is_defaulted_not_fatal(repo: tuple[Path, dict[str, str], str]) -> None:
    """A key the library defaults may go: DVC sees the section change and the stage runs."""
    import torch

    work, env, good = repo
    weights = torch.load(work / "models/generator.pt", weights_only=True)["generator"]
    (work / "params.yaml").write_text(_edit(lambda d: d["train"].pop("log_every"))(good))
    try:
        result = _dvc(work, env, "repro", "train")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Running stage 'train'" in result.stdout
        # log_every changes no weight: the finished checkpoint is resumed, nothing retrained.
        metrics = json.loads((work / "reports/train.json").read_text())
        assert metrics["resumed_from_step"] == metrics["steps"] == TINY["train"]["max_steps"]
        again = torch.load(work / "models/generator.pt", weights_only=True)["generator"]
        assert all(torch.equal(weights[k], again[k]) for k in weights)
    finally:
        (work / "params.yaml").write_text(good)
        assert _dvc(work, env, "repro", "train").returncode == 0


def test_a_broken_prepare_section_is_undone_from_the_run_cache_without_retraining(
    repo: tuple[Path, dict[str, str], str],
) -> None:
    work, env, good = repo
    before = _snapshot(work)
    (work / "params.yaml").write_text(_edit(lambda d: d.update(prepare=[16]))(good))
    failed = _dvc(work, env, "repro", "train")
    (work / "params.yaml").write_text(good)
    assert failed.returncode != 0 and "prepare" in failed.stdout + failed.stderr
    assert _snapshot(work) == before  # train's outs untouched
    fixed = _dvc(work, env, "repro", "train")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Running stage" not in fixed.stdout, fixed.stdout  # restored, not rerun
    assert (work / "data/prepared/meta.json").is_file()
    assert _snapshot(work) == before
    assert "up to date" in _dvc(work, env, "status", "train").stdout
