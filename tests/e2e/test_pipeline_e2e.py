"""End to end: `dvc repro` on a tiny config in a temporary copy of the repository."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from tiny_repo import commit_all, dvc, env_for, make_clone, run

# This run's params over tiny_repo.TINY (the tests below read some of them back).
TINY = {
    "classifier": {"epochs": 2},
    "train": {"max_steps": 6, "checkpoint_every": 3},
    "evaluate": {"num_samples": 120, "batch_size": 60, "kid_subsets": 5},
    "export": {"parity_batches": [1, 3]},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git + DVC copy of the project with a tiny params.yaml, after one `dvc repro`."""
    base = tmp_path_factory.mktemp("e2e")
    env = env_for(f"sqlite:///{base / 'mlflow.db'}")
    work = make_clone(base / "repo", env, **TINY)
    run(dvc("repro"), work, env)
    return work, env


@pytest.mark.slow
def test_repro_writes_every_out(repo: tuple[Path, dict[str, str]]) -> None:
    work, _ = repo
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for entry in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            assert (work / path).exists(), f"stage {name} did not write {path}"
    assert (work / "data/prepared/meta.json").is_file()
    assert any((work / "plots/samples").glob("*.png"))


@pytest.mark.slow
def test_metrics_hold_the_figures(repo: tuple[Path, dict[str, str]]) -> None:
    work, _ = repo
    train = json.loads((work / "reports/train.json").read_text())
    evaluate = json.loads((work / "reports/eval.json").read_text())
    export = json.loads((work / "reports/export.json").read_text())
    classifier = json.loads((work / "reports/classifier.json").read_text())
    assert train["steps"] == TINY["train"]["max_steps"]
    assert 0.0 < classifier["test_accuracy"] <= 1.0
    for key in ("fid", "fid_floor", "kid_mean", "is_mean"):
        assert isinstance(evaluate[key], float), key
    assert evaluate["num_samples"] == TINY["evaluate"]["num_samples"]
    assert export["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_one_mlflow_run_holds_params_and_all_stage_metrics(
    repo: tuple[Path, dict[str, str]],
) -> None:
    work, _ = repo
    run_id = json.loads((work / "models/mlflow_run.json").read_text())["run_id"]
    db = sqlite3.connect(work.parent / "mlflow.db")
    runs = [r[0] for r in db.execute("select run_uuid from runs")]
    assert runs == [run_id]
    params = dict(db.execute("select key, value from params where run_uuid=?", (run_id,)))
    metrics = {r[0] for r in db.execute("select key from metrics where run_uuid=?", (run_id,))}
    assert params["train.lr_g"] == "0.0004"
    assert params["train.max_steps"] == "6"
    assert params["prepare.dataset"] == "digits"
    assert params["classifier.epochs"] == "2"
    assert params["evaluate.num_samples"] == "120"
    assert params["export.opset"] == "18"
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= metrics
    assert {"eval.fid", "eval.fid_floor", "eval.kid_mean", "eval.is_mean"} <= metrics
    assert "classifier.test_accuracy" in metrics
    assert any("max_abs_diff" in m for m in metrics)


@pytest.mark.slow
def test_second_repro_changes_nothing_and_dvc_reads_metrics(
    repo: tuple[Path, dict[str, str]],
) -> None:
    work, env = repo
    status = run(dvc("status"), work, env)
    assert "up to date" in status.stdout, status.stdout
    again = run(dvc("repro"), work, env)
    assert "Running stage" not in again.stdout
    shown = run(dvc("metrics", "show", "--json"), work, env)
    assert "fid" in shown.stdout


def test_an_edit_of_imported_code_makes_its_stages_stale(
    repo: tuple[Path, dict[str, str]],
) -> None:
    """data/scaling.py scales training input: editing it reruns train (stages/test_dvc_deps.py)."""
    work, env = repo
    scaling = work / "src/ganforge/data/scaling.py"
    original = scaling.read_text()
    scaling.write_text(original + "\n# edited\n")
    try:
        status = run(dvc("status"), work, env).stdout
    finally:
        scaling.write_text(original)
    stale = {line.strip().rstrip(":") for line in status.splitlines() if not line.startswith(" ")}
    assert {"train", "evaluate", "export"} <= stale, status
    assert "up to date" in run(dvc("status"), work, env).stdout


@pytest.mark.slow
def test_exp_run_with_a_set_param(repo: tuple[Path, dict[str, str]]) -> None:
    work, env = repo
    commit_all(work, env, "lock")
    run(dvc("exp", "run", "-S", "train.max_steps=4"), work, env)
    assert json.loads((work / "reports/train.json").read_text())["steps"] == 4
