"""The `train` stage end to end on a tiny prepared store: outs, metrics, MLflow, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from ganforge.config import TrainConfig
from ganforge.models import load_generator
from pipeline.stage import StageError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared_digits_16: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(prepared_digits_16)
    train = dict(
        nz=16,
        ngf=8,
        ndf=8,
        batch_size=64,
        epochs=1,
        max_steps=20,
        log_every=5,
        checkpoint_every=8,
        num_sample_images=16,
        device="cpu",
    )
    params = {"seed": 0, "mlflow": {"experiment": "test-train"}, "train": train}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_train_stage_writes_its_outs(workspace: Path) -> None:
    from pipeline import train

    train.main()
    generator, spec, extra = load_generator(workspace / "models/generator.pt")
    assert spec.sample_shape == (1, 16, 16) and extra["weights"] == "ema"
    assert extra["step"] == 20 and extra["train_config"]["ngf"] == 8
    assert extra["dataset_hash"] and len(extra["class_names"]) == 10
    with torch.no_grad():
        assert generator(torch.randn(2, 16)).shape == (2, 1, 16, 16)
    run = json.loads((workspace / "models/mlflow_run.json").read_text())
    assert extra["run_id"] == run["run_id"]
    assert (workspace / "models/checkpoints/last.pt").is_file()
    grids = sorted(p.name for p in (workspace / "plots/samples").iterdir())
    assert grids == ["epoch_0001.png", "epoch_0002.png"]  # 19 batches an epoch, 20 steps
    rows = list(csv.DictReader((workspace / "plots/train_history.csv").open()))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert set(rows[0]) == {
        "step",
        "loss_d",
        "loss_g",
        "d_real",
        "d_fake",
        "grad_norm_g",
        "grad_norm_d",
        "images_per_s",
        "diversity",
        "fid_val",  # dvc.yaml's fid_curve reads it; empty: no classifier, no validation FID
        "value_v",  # the lectures' V(D, G) on held-out data; its optimum is not defined on images
    }
    assert all(r["fid_val"] == "" for r in rows)
    assert all(float(r["value_v"]) < 0 for r in rows)  # V = E log D(x) + E log(1 − D(G(z)))
    lectures = workspace / "plots/lectures"
    with (lectures / "value.csv").open() as f:  # no −log 4 + 2·JSD on images: header only
        assert len(list(csv.DictReader(f))) == 0
    assert (lectures / "figures/saturation.png").stat().st_size > 0
    assert not (lectures / "figures/figure1.png").exists()  # a 1-D picture
    metrics = json.loads((workspace / "reports/train.json").read_text())
    assert metrics["steps"] == 20 and metrics["device"] == "cpu" and metrics["images_per_s"] > 0
    assert metrics["kept"] == "last" and metrics["quality_measure"] is None
    assert metrics["lectures_seconds"] > 0  # bench/quality.py: its share of the stage's time
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "epochs", "train_seconds"):
        assert key in metrics
    # auto filled what params.yaml left out, from the recipe of labelled images, and says why
    assert (
        metrics["recipe"]["name"] == "dcgan" and metrics["budget"] == "20 steps from max_steps 20"
    )
    reasons = metrics["recipe"]["reasons"]
    assert reasons["labels"].startswith("labelled images") and reasons["lr_g"] == "recipe dcgan"
    assert "ngf" not in reasons  # set in params.yaml: the user's value wins
    assert metrics["recipe"]["why"].startswith("dcgan with labels")
    assert metrics["train_config"]["labels"] == "latent" and metrics["train_config"]["ngf"] == 8

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workspace / 'mlflow.db'}")
    logged = mlflow.get_run(run["run_id"])
    assert logged.data.params["train.ngf"] == "8" and logged.data.params["seed"] == "0"
    # amp: auto is logged as asked, and beside it what it resolved to on this machine
    assert logged.data.params["train.amp"] == "auto"
    assert logged.data.params["resolved.amp"] == metrics["amp"] in ("off", "bf16")
    assert logged.data.params["resolved.device"] == "cpu"
    assert logged.data.params["resolved.channels_last"] == "True"
    # the resolved recipe, not "auto", is what mlflow ui shows
    assert logged.data.params["train.lr_g"] == "0.0004" and logged.data.params["train.recipe"] == (
        "dcgan"
    )
    assert {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_g", "images_per_s"} <= set(
        logged.data.metrics
    )
    history = mlflow.tracking.MlflowClient().get_metric_history(run["run_id"], "loss_d")
    assert [m.step for m in history] == [5, 10, 15, 20]
    digests = [i.dataset.digest for i in logged.inputs.dataset_inputs]
    assert digests == [extra["dataset_hash"][:32]]

    # Run again: the finished checkpoint is picked up, nothing is retrained.
    train.main()
    again = json.loads((workspace / "reports/train.json").read_text())
    assert again["resumed_from_step"] == 20 and again["steps"] == 20


def test_train_stage_without_labels_has_d_read_clusters(workspace: Path) -> None:
    """labels: none picks the label-free recipe: D reads ten k-means clusters of the training
    images, G draws its cluster from z, and the record, MLflow and the generator say so."""
    from pipeline import train

    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["train"] |= {"labels": "none", "max_steps": 10}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    train.main()
    generator, spec, _ = load_generator(workspace / "models/generator.pt")
    names = [f"cluster {k}" for k in range(10)]
    assert list(spec.class_names) == names and not spec.conditional
    assert len(spec.class_prior) == 10 and sum(spec.class_prior) == pytest.approx(1.0)
    with torch.no_grad():
        assert generator(torch.randn(3, 16)).shape == (3, 1, 16, 16)  # z in, image out
    metrics = json.loads((workspace / "reports/train.json").read_text())
    assert metrics["recipe"]["name"] == "dcgan_label_free"
    assert metrics["train_config"]["clusters"] == 10
    assert metrics["train_config"]["labels"] == "none"
    assert metrics["recipe"]["reasons"]["clusters"] == "recipe dcgan_label_free"
    import mlflow

    run = json.loads((workspace / "models/mlflow_run.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{workspace / 'mlflow.db'}")
    assert mlflow.get_run(run["run_id"]).data.params["train.clusters"] == "10"
    # What the stage trained with: the clusters as labels, the digits kept for the monitor's
    # class prior, and held-out images placed in clusters for the lectures' D probes.
    from ganforge.data import load_split
    from pipeline.params import load_params
    from pipeline.train_inputs import read_inputs

    inputs = read_inputs(load_params())
    prepared = workspace / "data/prepared"
    train_split, val = load_split(prepared, "train"), load_split(prepared, "val")
    assert inputs.clusters is not None and torch.equal(inputs.labels, inputs.clusters.labels)
    assert torch.equal(inputs.data_labels, train_split.labels)
    held_out = inputs.held_out_labels(val)
    assert torch.equal(held_out, inputs.clusters.assign(val.data))
    assert not torch.equal(held_out, val.labels)  # clusters are not the digits' labels
    assert (workspace / "plots/lectures/figures/saturation.png").stat().st_size > 0
    # The same seed clusters alike, so a second run resumes the finished checkpoint.
    train.main()
    assert json.loads((workspace / "reports/train.json").read_text())["resumed_from_step"] == 10


def test_train_stage_without_prepared_data_names_the_stage(workspace: Path) -> None:
    from pipeline import train

    (workspace / "data/prepared").unlink()
    with pytest.raises(StageError, match="dvc repro prepare"):
        train.main()


def test_train_stage_turns_bad_options_into_stage_errors(workspace: Path) -> None:
    from pipeline import train

    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["train"]["labels"] = "conditional"
    params["train"]["model"] = "dcgan"
    params["train"]["batch_size"] = 5000
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(StageError, match="batch_size"):
        train.main()


def test_dvc_train_stage_tracks_every_train_option() -> None:
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]
    listed = {p for p in stage["params"] if isinstance(p, str)}
    assert "train" in listed  # the whole section: every option, present or defaulted
    assert set(yaml.safe_load((REPO / "params.yaml").read_text())["train"]) == set(
        TrainConfig.model_fields
    )


def test_a_failed_train_keeps_the_previous_run_record(workspace: Path) -> None:
    """evaluate and export log into the recorded run: a failed train must not replace it."""
    from pipeline import train

    record = workspace / "models" / "mlflow_run.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text('{"run_id": "previous"}')
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["train"]["batch_size"] = 5000  # more than the data: fails inside the run
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(StageError):
        train.main()
    assert json.loads(record.read_text()) == {"run_id": "previous"}
