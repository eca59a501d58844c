"""docs/guide.md's "Comparing runs", followed on a fresh clone: baseline, experiments, a sweep.

One module-scoped clone with tiny params: `dvc repro`, commit the baseline (guide step), then
a one-param experiment and a sweep of two queued experiments, each its own MLflow run named
after it; the registry's champion loads with mlflow.pyfunc.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from tiny_repo import commit_all, dvc, env_for, make_clone, run

pytestmark = pytest.mark.slow

SWEEP = ("0.0001", "0.0003")  # two queued runs are a sweep; each is a whole tiny pipeline


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("experiments")
    env = env_for(f"sqlite:///{base / 'mlflow.db'}")
    work = make_clone(base / "repo", env)
    run(dvc("repro"), work, env)
    # docs/guide.md: commit the default run as the baseline.
    commit_all(work, env, "baseline: default run")
    status = run(["git", "status", "--porcelain"], work, env).stdout
    assert status == "", f"the baseline left files out of git:\n{status}"
    return work, env


def _runs(env: dict[str, str]) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("ganforge")
    return client.search_runs([exp.experiment_id])


def test_baseline_is_committed_with_only_headline_metrics(clone) -> None:
    work, env = clone
    tracked = run(["git", "ls-files"], work, env).stdout.split()
    assert "dvc.lock" in tracked and "metrics/eval.json" in tracked
    assert "reports/export.json" in tracked and "plots/train_history.csv" in tracked
    numbers = 0
    for file in sorted((work / "metrics").glob("*.json")):
        numbers += len(json.loads(file.read_text()))
    assert numbers <= 20, f"{numbers} numbers in metrics/: DVC diffs every one of them"
    export = json.loads((work / "metrics/export.json").read_text())
    assert export == {"parity_of_atol": 0.0}  # no latency, no 1e-9 noise
    (run_,) = _runs(env)
    assert run_.info.run_name == "digits-dcgan-ns-s0" and run_.info.status == "FINISHED"


def test_one_param_experiment_shows_beside_the_baseline(clone) -> None:
    work, env = clone
    run(dvc("exp", "run", "-S", "train.max_steps=6"), work, env)
    wide = {**env, "COLUMNS": "160"}
    shown = run(dvc("exp", "show", "--only-changed", "--no-pager"), work, wide).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 160, shown
    assert "…" not in shown, f"cells cut short at 160 columns:\n{shown}"
    assert "workspace" in shown and re.search(r"\b(main|master)\b", shown), shown
    assert "fid" in shown and "max_steps" in shown, shown
    diff = run(dvc("metrics", "diff", "--json"), work, env).stdout
    assert "metrics/train.json" in json.loads(diff)
    params = json.loads(run(dvc("params", "diff", "--json"), work, env).stdout)
    assert params["params.yaml"]["train.max_steps"]["new"] == 6
    (name,) = run(dvc("exp", "list", "--name-only"), work, env).stdout.split()
    runs = {r.info.run_name: r for r in _runs(env)}
    assert set(runs) == {"digits-dcgan-ns-s0", name}, sorted(runs)
    assert runs[name].data.tags["dvc.exp_name"] == name


def test_queued_sweep_runs_each_as_its_own_named_mlflow_run(clone) -> None:
    work, env = clone
    run(["git", "checkout", "--", "params.yaml"], work, env)
    for lr in SWEEP:
        run(dvc("exp", "run", "--queue", "-S", f"train.lr_g={lr}"), work, env)
    run(dvc("queue", "start"), work, env)
    deadline = time.monotonic() + 1500
    while True:
        status = run(dvc("queue", "status"), work, env).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        assert time.monotonic() < deadline, status
        time.sleep(5)
    assert status.count("Success") == len(SWEEP), status
    names = run(dvc("exp", "list", "--name-only"), work, env).stdout.split()
    assert len(names) == 1 + len(SWEEP), names  # the one-param experiment and the sweep
    runs = {r.info.run_name: r for r in _runs(env)}
    for name in names:
        assert name in runs, (name, sorted(runs))
        assert runs[name].info.status == "FINISHED"
        assert runs[name].data.tags["dvc.exp_name"] == name
    # the sweep's runs, not the one-param experiment's (max_steps 6, the recipe's lr_g)
    sweep = [n for n in names if runs[n].data.params.get("train.max_steps") != "6"]
    assert {runs[n].data.params["train.lr_g"] for n in sweep} == set(SWEEP), sweep
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]


def test_champion_loads_with_pyfunc(clone) -> None:
    import mlflow
    import numpy as np

    work, env = clone
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(env["MLFLOW_TRACKING_URI"])  # not one an earlier test left
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("ganforge-generator", "champion")
    versions = client.search_model_versions("name = 'ganforge-generator'")
    fids = {v.version: float(v.tags["eval.fid"]) for v in versions}
    assert len(versions) >= 2
    assert float(champion.tags["eval.fid"]) == min(fids.values()), fids
    model = mlflow.pyfunc.load_model("models:/ganforge-generator@champion")
    nz = json.loads((work / "reports/train.json").read_text())["train_config"]["nz"]
    z = np.random.default_rng(0).standard_normal((2, nz)).astype(np.float32)
    assert model.predict({"z": z})["image"].shape == (2, 1, 16, 16)


def test_plots_of_the_baseline_render_offline(clone) -> None:
    from plots_helpers import need_browser, render_in_chromium, vega_plot_ids

    need_browser()
    work, env = clone
    run(dvc("plots", "show", "-o", "page"), work, env)
    ids = vega_plot_ids(yaml.safe_load((work / "dvc.yaml").read_text()))
    counts, _ = render_in_chromium(work / "page" / "index.html", ids)
    assert all(n >= 1 for n in counts.values()), counts
