"""SIGTERM (`kill`, a CI timeout) in any stage: the MLflow run ends KILLED, the outs stay as
they were, and the stage says so in one line (exit code 143, as a shell reports a SIGTERM)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipeline.stage import stage_main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# The stage stops inside its MLflow block (after writing its staged outs): it says so by
# creating the file at MARKER, then waits to be killed.
STALL_IN_MLFLOW = """
import pathlib, time
import mlflow

def _stall(*args, **kwargs):
    pathlib.Path(MARKER).touch()
    time.sleep(300)

mlflow.log_metrics = _stall
"""


def test_sigterm_ends_a_stage_in_one_line_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)

    @stage_main("classifier")
    def main() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # interrupted at once

    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def _files(root: Path, outs: tuple[str, ...]) -> dict[str, tuple[bytes, int]]:
    """Each out's bytes and inode: a stage that finished would have replaced the file."""
    return {out: ((root / out).read_bytes(), (root / out).stat().st_ino) for out in outs}


def _terminate_inside_mlflow(stage: str, work: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m pipeline.<stage>` in `work`, SIGTERM it once it is inside its MLflow run."""
    marker = work / "inside-mlflow"
    code = f"MARKER = {str(marker)!r}\n{STALL_IN_MLFLOW}\nimport runpy\n"
    code += f"runpy.run_module('pipeline.{stage}', run_name='__main__', alter_sys=True)\n"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    env["PYTHONWARNINGS"] = "ignore"
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=work, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{stage} never reached its MLflow block:\n{out}\n{err}")
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _check(stage: str, work: Path, outs: tuple[str, ...]) -> None:
    import mlflow

    before = _files(work, outs)
    run_id = json.loads((work / "models/mlflow_run.json").read_text())["run_id"]
    result = _terminate_inside_mlflow(stage, work)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [f"{stage}: stopped by SIGTERM"], result.stderr
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "KILLED"
    assert _files(work, outs) == before
    assert not list(work.rglob("*.staged")) and not list(work.rglob(".*.tmp"))


def _workspace(
    work: Path, params: dict, prepared: Path | None, save: Callable[[], None], stage: str
) -> None:
    """`work` with params, data, a generator and its MLflow run, after one run of `stage`."""
    import importlib

    import mlflow

    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    if prepared is not None:
        shutil.copytree(prepared, work / "data" / "prepared")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(params["mlflow"]["experiment"])
        with mlflow.start_run() as run:
            pass
        (work / "models").mkdir()
        save()
        (work / "models/mlflow_run.json").write_text(json.dumps({"run_id": run.info.run_id}))
        importlib.import_module(f"pipeline.{stage}").main()


def test_sigterm_in_evaluate_kills_the_run_and_keeps_the_outs(
    tmp_path: Path, prepared_ring: Path
) -> None:
    from ganforge.models import GeneratorSpec, build_discriminator, build_generator, save_generator

    spec = GeneratorSpec(arch="mlp", nz=2, sample_shape=(2,), ngf=16, ndf=16)

    def save() -> None:
        disc = build_discriminator(spec)
        save_generator("models/generator.pt", spec, build_generator(spec), discriminator=disc)

    params = {"mlflow": {"experiment": "signals", "registered_model": None},
              "evaluate": {"num_samples": 500, "device": "cpu"}}  # fmt: skip
    work = tmp_path / "ws"
    _workspace(work, params, prepared_ring, save, "evaluate")
    params["seed"] = 1  # a success would change the outs
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    outs = ("metrics/eval.json", "reports/eval.json", "plots/eval_samples.png",
            "plots/class_histogram.csv")  # fmt: skip
    _check("evaluate", work, outs)


def test_sigterm_in_export_kills_the_run_and_keeps_the_outs(tmp_path: Path) -> None:
    from ganforge.models import GeneratorSpec, build_generator, save_generator

    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8)

    def save() -> None:
        save_generator("models/generator.pt", spec, build_generator(spec))

    params = {"mlflow": {"experiment": "signals", "registered_model": None},
              "export": {"parity_batches": [1]}}  # fmt: skip
    work = tmp_path / "ws"
    _workspace(work, params, None, save, "export")
    _check("export", work, ("models/generator.onnx", "metrics/export.json", "reports/export.json"))
