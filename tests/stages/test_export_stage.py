"""The export stage end to end: ONNX out, metrics/export.json, the model in MLflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from ganforge.models import GeneratorSpec, build_generator, save_generator

pytestmark = pytest.mark.slow

SPEC = GeneratorSpec(
    arch="dcgan", nz=16, sample_shape=(1, 32, 32), num_classes=3, ngf=8, ndf=8,
    class_names=("zero", "one", "two"),
)  # fmt: skip


@pytest.fixture()
def stage_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank_db: Path) -> Path:
    """A repo-like temp dir: params.yaml, models/generator.pt and an MLflow run for it."""
    import mlflow

    shutil.copy(blank_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    params = {
        "mlflow": {"experiment": "export-test", "registered_model": "gf-test-generator"},
        "export": {"parity_batches": [1, 5]},
    }
    Path("params.yaml").write_text(yaml.safe_dump(params))
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("export-test")
    with mlflow.start_run() as run:
        pass
    G, ema = build_generator(SPEC), build_generator(SPEC)
    for p in ema.parameters():  # EMA weights that differ from the raw ones
        p.data.add_(0.01)
    Path("models").mkdir()
    save_generator("models/generator.pt", SPEC, G, ema=ema, extra={"run_id": run.info.run_id})
    Path("models/mlflow_run.json").write_text(json.dumps({"run_id": run.info.run_id}))
    return tmp_path


def test_export_stage_writes_outs_and_logs_a_loadable_model(stage_dir: Path) -> None:
    import mlflow
    import onnx

    from pipeline import export as stage

    stage.main()

    model = onnx.load("models/generator.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    assert props["weights"] == "ema"
    assert json.loads(props["class_names"]) == ["zero", "one", "two"]
    assert not list(Path("models").glob("*.onnx.data"))

    metrics = json.loads(Path("reports/export.json").read_text())
    assert set(metrics["parity"]["max_abs_diff"]) == {"1", "5"}
    assert metrics["parity"]["passed"] and metrics["parity"]["worst"] <= 1e-4
    assert metrics["max_abs_diff"] == metrics["parity"]["worst"] <= 1e-4
    assert metrics["opset"] == 18
    # no in-process latency: bench/onnx_latency.py times each runtime in its own process
    assert "latency" not in metrics
    assert metrics["providers"]["serving"] == ["CPUExecutionProvider"]

    run_id = json.loads(Path("models/mlflow_run.json").read_text())["run_id"]
    run = mlflow.get_run(run_id)
    assert run.data.tags["stage.export"] == "done"
    assert run.data.params["export.opset"] == "18"
    assert "export.parity.max_abs_diff.1" in run.data.metrics

    (version,) = mlflow.MlflowClient().search_model_versions("name = 'gf-test-generator'")
    pyfunc = mlflow.pyfunc.load_model(f"models:/gf-test-generator/{version.version}")
    z = np.random.default_rng(0).standard_normal((4, SPEC.nz)).astype(np.float32)
    out = pyfunc.predict({"z": z, "label": np.array([0, 1, 2, 0])})
    assert out["image"].shape == (4, 1, 32, 32)
    assert np.abs(out["image"]).max() <= 1.0
    mlmodel = yaml.safe_load(
        Path(mlflow.artifacts.download_artifacts(f"models:/gf-test-generator/{version.version}"))
        .joinpath("MLmodel")
        .read_text()
    )
    # a pyfunc run by ganforge.inference (a label for models with classes, refused without)
    assert mlmodel["flavors"]["python_function"]["loader_module"] == (
        "ganforge.inference.mlflow_pyfunc"
    )
    assert mlmodel["metadata"]["providers"] == ["CPUExecutionProvider"]
    assert mlmodel["metadata"]["pyfunc_inputs"] == "z [N, nz] float32, label [N] int64"
    reqs = (
        Path(mlflow.artifacts.download_artifacts(f"models:/gf-test-generator/{version.version}"))
        .joinpath("requirements.txt")
        .read_text()
    )
    assert "onnxruntime-gpu" in reqs
    assert not any(line.startswith("onnxruntime=") for line in reqs.splitlines())


def test_export_stage_skips_registering_without_a_model_name(stage_dir: Path) -> None:
    import mlflow

    from pipeline import export as stage

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["mlflow"]["registered_model"] = None
    params["export"]["parity_batches"] = [2]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    stage.main()
    assert Path("models/generator.onnx").is_file()
    assert mlflow.MlflowClient().search_registered_models() == []


def test_export_stage_needs_the_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import export as stage
    from pipeline.stage import StageError

    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("export:\n  opset: 18\n")
    with pytest.raises(StageError, match="train"):
        stage.main()
    assert not Path("models/generator.onnx").exists()
