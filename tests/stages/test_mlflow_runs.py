"""MLflow runs that read well and that end: experiment kind, run names, life cycle, stores."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.paths import OPEN_RUN_FILE, RUN_FILE
from pipeline.stage import StageError
from pipeline.tracking import (
    EXPERIMENT_KIND,
    check_tracking_server,
    default_run_name,
    mlflow_run,
    run_name_for,
)

REPO = Path(__file__).resolve().parents[2]


def _env(uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = uri
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env.pop("DVC_EXP_NAME", None)
    return env


def test_run_names_follow_dvc_then_params_then_the_setup(monkeypatch) -> None:
    assert default_run_name("digits", "dcgan", "non_saturating", 0, False) == "digits-dcgan-ns-s0"
    assert default_run_name("mnist", "mlp", "minimax", 3, True) == "mnist-cmlp-mm-s3"
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert run_name_for(None, "digits-dcgan-ns-s0") == "digits-dcgan-ns-s0"
    monkeypatch.setenv("DVC_EXP_NAME", "gusty-pike")
    assert run_name_for(None, "digits-dcgan-ns-s0") == "gusty-pike"
    assert run_name_for("mine", "digits-dcgan-ns-s0") == "mine"


def test_experiment_opens_on_the_runs_table_and_runs_end(tmp_path, monkeypatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow_run("train", "kinds", "digits-dcgan-ns-s0") as run:
        assert json.loads(OPEN_RUN_FILE.read_text())["run_id"] == run.info.run_id
    done = mlflow.get_run(run.info.run_id)
    assert done.info.status == "FINISHED" and done.info.run_name == "digits-dcgan-ns-s0"
    assert done.data.tags["stage.train"] == "done" and not OPEN_RUN_FILE.exists()
    exp = mlflow.get_experiment_by_name("kinds")
    assert exp.tags[EXPERIMENT_KIND[0]] == "custom_model_development"

    # A failed stage: the run ends FAILED, untagged as done, and no run record is written.
    RUN_FILE.unlink()
    with pytest.raises(StageError), mlflow_run("train", "kinds", "broken") as failed:
        raise StageError("train: boom")
    info = mlflow.get_run(failed.info.run_id)
    assert info.info.status == "FAILED" and "stage.train" not in info.data.tags
    assert not RUN_FILE.exists()

    # Ctrl-C: KILLED.
    with pytest.raises(KeyboardInterrupt), mlflow_run("train", "kinds", "stopped") as stopped:
        raise KeyboardInterrupt
    assert mlflow.get_run(stopped.info.run_id).info.status == "KILLED"


def test_unreachable_server_stops_a_stage_in_seconds_with_one_line(tmp_path) -> None:
    with pytest.raises(
        StageError, match=r"http://127.0.0.1:9 is not reachable.*MLFLOW_TRACKING_URI"
    ):
        check_tracking_server("http://127.0.0.1:9")
    # The whole stage, as `dvc repro` runs it: upstream outs present, server down.
    (tmp_path / "models").mkdir()
    (tmp_path / "models/generator.pt").write_bytes(b"")
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    env = _env("http://127.0.0.1:9")
    # Importing torch and torchmetrics alone takes seconds (more on a loaded machine): time
    # it side by side, so that what is checked is what the stage adds before it stops.
    start = time.monotonic()
    imported = subprocess.run(
        [sys.executable, "-c", "import pipeline.evaluate"], cwd=tmp_path, env=env, timeout=120
    )
    import_seconds = time.monotonic() - start
    assert imported.returncode == 0
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.evaluate"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    # Stopped within 15 s on a quiet machine: a few seconds over the imports, not MLflow's
    # minutes of retries.
    assert result.returncode != 0, result.stderr
    assert elapsed < max(15.0, import_seconds + 5.0), (elapsed, import_seconds)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "http://127.0.0.1:9" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


STARTER = """
import sys, time
from pathlib import Path
from pipeline.tracking import mlflow_run
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
with mlflow_run("train", "race", sys.argv[2]):
    pass
print("ok")
"""


def test_two_processes_on_a_fresh_sqlite_store_both_succeed(tmp_path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    go = tmp_path / "go"
    procs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", STARTER, str(go), name],
                cwd=tmp_path / name,
                env=_env(uri),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    time.sleep(8)  # both have imported MLflow and wait at the barrier
    go.touch()
    outs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0 and "ok" in out, err
    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("race").experiment_id]
    )
    assert sorted(r.info.run_name for r in runs) == ["one", "two"]


@pytest.fixture
def train_dir(tmp_path: Path, prepared_digits_16: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(prepared_digits_16)
    # long enough to be killed mid-way; no checkpoint, so the next start trains afresh
    train = dict(nz=8, ngf=8, ndf=8, batch_size=32, epochs=200, log_every=1)
    train |= dict(checkpoint_every=100_000, num_sample_images=4, device="cpu")
    params = {"seed": 0, "mlflow": {"experiment": "killed"}, "train": train}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _rows_logged(work: Path) -> int:
    """Rows in the history a running train stages (`.train_history.csv.*.staged/`)."""
    staged = list((work / "plots").glob(".train_history.csv.*.staged/train_history.csv"))
    with contextlib.suppress(OSError):
        return max((len(p.read_text().splitlines()) - 1 for p in staged), default=0)
    return 0


def _start_train(work: Path, uri: str) -> subprocess.Popen[str]:
    for stale in (work / "plots").glob(".train_history.csv.*.staged"):  # an earlier start's
        shutil.rmtree(stale)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.train"], cwd=work, env=_env(uri),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while _rows_logged(work) < 2:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    return proc


def test_killed_training_leaves_no_run_running(train_dir: Path) -> None:
    import mlflow

    uri = f"sqlite:///{train_dir / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)

    # SIGTERM (`kill`, a CI timeout): the run is closed as KILLED on the way out.
    proc = _start_train(train_dir, uri)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert proc.stderr is not None and "train: stopped by SIGTERM" in proc.stderr.read()
    (terminated,) = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    assert terminated.info.status == "KILLED"

    # SIGKILL: nothing runs on the way out; the next start closes the stale run.
    proc = _start_train(train_dir, uri)
    stale_id = json.loads((train_dir / OPEN_RUN_FILE).read_text())["run_id"]
    proc.kill()
    proc.wait(timeout=60)
    assert client.get_run(stale_id).info.status == "RUNNING"
    params = yaml.safe_load((train_dir / "params.yaml").read_text())
    params["train"]["max_steps"] = 5  # the next training ends soon
    (train_dir / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.train"], cwd=train_dir, env=_env(uri),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert client.get_run(stale_id).info.status == "KILLED"
    runs = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED", "KILLED"]
    assert not any(r.info.status == "RUNNING" for r in runs)
