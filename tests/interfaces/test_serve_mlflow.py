"""MLflow-native serving: `mlflow models serve` answers /invocations with generated samples."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import call, export_models, free_port, start_process, stop

from ganforge.inference import Generator

pytestmark = pytest.mark.slow


def test_mlflow_models_serve_answers_invocations(tmp_path, monkeypatch):
    import mlflow

    from ganforge.models import GeneratorSpec
    from pipeline.onnx_model import log_onnx_model

    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8, num_classes=3)
    path = export_models(tmp_path, {"g": spec})["g"]
    gen = Generator.load(path, "cpu")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("serve-test")  # not an experiment id cached by an earlier test
    # the export stage's own logging call (no registry here: registration is its policy)
    params = types.SimpleNamespace(mlflow=types.SimpleNamespace(registered_model=None))
    with mlflow.start_run() as run:
        log_onnx_model(path, gen.metadata, spec, ["CPUExecutionProvider"], params)
    model_uri = f"runs:/{run.info.run_id}/generator_onnx"

    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    proc, url = start_process(
        cmd,
        f"http://127.0.0.1:{port}",
        "/ping",
        # mlflow execs `uvicorn` by name: the venv's bin must be on PATH
        {"MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    try:
        z = gen.latents(3, seed=4)
        labels = [0, 2, 1]
        body = {"inputs": {"z": z.tolist(), "label": labels}}
        status, kind, reply = call(url, "/invocations", body)
        assert status == 200, reply[:500]
        images = np.asarray(json.loads(reply)["predictions"]["image"], np.float32)
        np.testing.assert_allclose(images, gen.run(z, labels), atol=1e-6)
        assert images.shape == (3, 1, 16, 16)
        # a malformed request is refused with a 4xx, not a crash
        assert call(url, "/invocations", {"inputs": {"z": [[1.0, 2.0]]}})[0] in (400, 422)
    finally:
        stop(proc)


def _serve_logged(path: Path, tmp_path: Path, name: str) -> tuple[object, str]:
    """Log `path` as the export stage does, then `mlflow models serve` it on loopback."""
    import mlflow

    from pipeline.onnx_model import log_onnx_model

    gen = Generator.load(path, "cpu")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"serve-{name}")
    params = types.SimpleNamespace(mlflow=types.SimpleNamespace(registered_model=None))
    with mlflow.start_run() as run:
        log_onnx_model(path, gen.metadata, None, ["CPUExecutionProvider"], params)
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m",
           f"runs:/{run.info.run_id}/generator_onnx", "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return start_process(cmd, f"http://127.0.0.1:{port}", "/ping", env)


def test_mlflow_serving_gives_a_latent_class_its_label_and_refuses_one_without_classes(
    tmp_path, monkeypatch
):
    from ganforge.models import GeneratorSpec

    base = {"arch": "dcgan", "nz": 8, "sample_shape": (1, 16, 16), "ngf": 8, "ndf": 8}
    specs = {
        "latent": GeneratorSpec(**base, num_classes=3, class_prior=(0.2, 0.5, 0.3)),
        "plain": GeneratorSpec(**base),
    }
    paths = export_models(tmp_path, specs)
    monkeypatch.chdir(tmp_path)  # MLflow puts a new experiment's artifacts under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    gen = Generator.load(paths["latent"], "cpu")
    z = gen.latents(4, seed=2)
    proc, url = _serve_logged(paths["latent"], tmp_path, "latent")
    try:
        status, _, reply = call(url, "/invocations", {"inputs": {"z": z.tolist(), "label": [2]}})
        assert status == 200, reply[:500]
        images = np.asarray(json.loads(reply)["predictions"]["image"], np.float32)
        np.testing.assert_allclose(images, gen.run(z, 2), atol=1e-6)
    finally:
        stop(proc)
    proc, url = _serve_logged(paths["plain"], tmp_path, "plain")
    try:
        status, _, reply = call(url, "/invocations", {"inputs": {"z": z.tolist(), "label": [2]}})
        assert status == 400, reply[:500]
        assert "label: this generator has no classes" in json.loads(reply)["message"]
        status, _, reply = call(url, "/invocations", {"inputs": {"z": z.tolist()}})
        assert status == 200, reply[:500]
    finally:
        stop(proc)
