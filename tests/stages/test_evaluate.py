"""The evaluate stage and `evaluate_images` / `evaluate_toy` end to end on tiny data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from ganforge.classifier import save_classifier, save_placeholder, train_classifier
from ganforge.config import ClassifierConfig, EvaluateConfig
from ganforge.data import load_meta, load_split
from ganforge.metrics import ClassifierFeatureNet, evaluate_images
from ganforge.metrics.features import FeatureNet
from ganforge.models import GeneratorSpec, build_discriminator, build_generator, save_generator

SMALL = {"num_samples": 300, "batch_size": 128, "kid_subset_size": 100, "kid_subsets": 5}
IMAGE_KEYS = {
    "fid", "fid_floor", "fid_over_floor", "kid_mean", "kid_std", "kid_subset_size", "is_mean",
    "is_std", "num_samples", "real_samples", "precision", "recall", "pr_samples",
    "precision_real", "recall_real", "classes_covered", "class_kl", "eval_seconds",
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_classifier(prepared_digits_16: Path):
    train = load_split(prepared_digits_16, "train")
    cfg = ClassifierConfig(epochs=3, width=8, feature_dim=32)
    return train_classifier(train.data, train.labels, 10, cfg, seed=0).model


def _stage_dir(tmp: Path, monkeypatch, blank_db: Path, prepared: Path, evaluate: dict) -> str:
    import mlflow

    shutil.copy(blank_db, tmp / "mlflow.db")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp)
    shutil.copytree(prepared, "data/prepared")
    Path("params.yaml").write_text(
        yaml.safe_dump({"mlflow": {"experiment": "eval-test"}, "evaluate": evaluate})
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("eval-test")
    with mlflow.start_run() as run:
        pass
    Path("models").mkdir()
    Path("models/mlflow_run.json").write_text(json.dumps({"run_id": run.info.run_id}))
    return run.info.run_id


def _save_untrained_mlp(nz: int, sample_shape: tuple[int, ...]) -> GeneratorSpec:
    """models/generator.pt: an untrained toy MLP G with its D, as train writes them."""
    spec = GeneratorSpec(arch="mlp", nz=nz, sample_shape=sample_shape, ngf=16, ndf=16)
    save_generator(
        "models/generator.pt", spec, build_generator(spec), discriminator=build_discriminator(spec)
    )
    return spec


def test_evaluate_stage_writes_metrics_plots_and_logs_to_the_generator_run(
    tmp_path, monkeypatch, blank_db, prepared_digits_16, tiny_classifier
) -> None:
    import mlflow

    from pipeline import evaluate as stage

    run_id = _stage_dir(tmp_path, monkeypatch, blank_db, prepared_digits_16, SMALL)
    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8)
    torch.manual_seed(0)
    save_generator("models/generator.pt", spec, build_generator(spec))
    save_classifier("models/classifier.pt", tiny_classifier)
    stage.main()

    metrics = json.loads(Path("reports/eval.json").read_text())
    assert IMAGE_KEYS <= set(metrics)
    assert metrics["num_samples"] == 300 and metrics["real_samples"] == 360
    assert metrics["fid"] > metrics["fid_floor"] > 0  # an untrained G is far from the data
    # real training images on the same precision/recall protocol: inside the test manifold,
    # unlike an untrained G's blobs
    assert metrics["precision_real"] > 0.5 > metrics["precision"]
    assert 0 <= metrics["classes_covered"] <= 10 and metrics["weights"] == "raw"
    with open("plots/class_histogram.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == [str(k) for k in range(10)]
    assert sum(int(r["generated"]) for r in rows) == 300
    assert sum(int(r["real"]) for r in rows) == 360
    assert Path("plots/eval_samples.png").stat().st_size > 0
    run = mlflow.get_run(run_id)
    assert run.data.metrics["eval.fid"] == pytest.approx(metrics["fid"])
    assert run.data.params["evaluate.num_samples"] == "300"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "evaluate")}
    assert "evaluate/eval.json" in artifacts and "evaluate/eval_samples.png" in artifacts


def test_evaluation_is_deterministic_for_a_seed_and_reports_conditional_accuracy(
    prepared_digits_16, tiny_classifier
) -> None:
    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), num_classes=10, ngf=8)
    torch.manual_seed(0)
    G = build_generator(spec).eval()
    splits = {s: load_split(prepared_digits_16, s) for s in ("train", "val", "test")}
    pair = {s: (x.data, x.labels) for s, x in splits.items()}
    cfg = EvaluateConfig(**SMALL)
    net = ClassifierFeatureNet(tiny_classifier)

    def run(seed: int) -> dict:
        m = evaluate_images(G, spec, net, pair["train"], pair["test"], cfg, seed=seed).metrics
        return {k: v for k, v in m.items() if "seconds" not in k}

    first = run(0)
    assert run(0) == first
    assert run(1)["fid"] != first["fid"]
    assert 0 <= first["conditional_accuracy"] <= 1


def test_another_feature_net_still_has_the_classifier_judge_classes(
    prepared_digits_16, tiny_classifier
) -> None:
    class OtherFeatures(FeatureNet):  # stands in for Inception: not the classifier's own net
        name = "other"

        def __init__(self, classifier) -> None:
            super().__init__()
            self.inner = classifier
            self.feature_dim, self.num_classes = classifier.feature_dim, classifier.num_classes

        def forward(self, images):
            features, logits = self.inner.features_and_logits(images)
            return features, -logits  # its own "classes": only the classifier may judge them

    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), num_classes=10, ngf=8)
    torch.manual_seed(0)
    G = build_generator(spec).eval()
    splits = {s: load_split(prepared_digits_16, s) for s in ("train", "test")}
    pair = {s: (x.data, x.labels) for s, x in splits.items()}
    cfg = EvaluateConfig(**SMALL)
    own = evaluate_images(G, spec, ClassifierFeatureNet(tiny_classifier), *pair.values(), cfg)
    other = evaluate_images(
        G, spec, OtherFeatures(tiny_classifier), *pair.values(), cfg, classifier=tiny_classifier
    )
    assert other.metrics["backend"] == "other"
    assert other.class_rows == own.class_rows  # same samples, same judge, same classes
    for key in ("classes_covered", "class_kl", "conditional_accuracy"):
        assert other.metrics[key] == own.metrics[key]


def test_mlp_generator_on_images_gets_a_parzen_score(prepared_digits_16, tiny_classifier) -> None:
    spec = GeneratorSpec(arch="mlp", nz=8, sample_shape=(1, 16, 16), ngf=32, ndf=32)
    G = build_generator(spec).eval()
    splits = {s: load_split(prepared_digits_16, s) for s in ("train", "val", "test")}
    pair = {s: (x.data, x.labels) for s, x in splits.items()}
    result = evaluate_images(
        G, spec, ClassifierFeatureNet(tiny_classifier), pair["train"], pair["test"],
        EvaluateConfig(**SMALL), val=pair["val"],
    )  # fmt: skip
    m = result.metrics
    assert m["parzen_samples"] == 300 and m["parzen_ll_se"] > 0 and m["parzen_sigma"] > 0
    assert result.samples.shape == (64, 1, 16, 16) and result.samples.dtype == torch.uint8


def test_evaluate_stage_on_the_ring_reports_modes(
    tmp_path, monkeypatch, blank_db, prepared_ring
) -> None:
    from pipeline import evaluate as stage

    _stage_dir(tmp_path, monkeypatch, blank_db, prepared_ring, {"num_samples": 1000})
    spec = _save_untrained_mlp(nz=2, sample_shape=(2,))
    stage.main()
    m = json.loads(Path("reports/eval.json").read_text())
    assert 0 <= m["modes_covered"] <= m["num_modes"] == 8
    assert m["real_high_quality_fraction"] > 0.95 and "v_value" in m and m["num_samples"] == 1000
    with open("plots/class_histogram.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert load_meta("data/prepared")["dataset"] == "ring_2d"

    # a D of another shape beside G (a damaged or hand-edited file): one line, not a traceback
    from pipeline.stage import StageError

    other = GeneratorSpec(arch="mlp", nz=2, sample_shape=(2,), ngf=16, ndf=32)
    save_generator(
        "models/generator.pt", spec, build_generator(spec), discriminator=build_discriminator(other)
    )
    with pytest.raises(StageError, match="generator.pt cannot be read as a ganforge discriminator"):
        stage.main()


def test_evaluate_stage_stops_with_clear_messages(
    tmp_path, monkeypatch, blank_db, prepared_digits_16
) -> None:
    from pipeline import evaluate as stage
    from pipeline.stage import StageError

    _stage_dir(tmp_path, monkeypatch, blank_db, prepared_digits_16, SMALL)
    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8)
    save_generator("models/generator.pt", spec, build_generator(spec))
    with pytest.raises(StageError, match="classifier.pt is missing"):
        stage.main()
    save_placeholder("models/classifier.pt", "celeba has no class labels")
    with pytest.raises(StageError, match="no class labels.*backend: inception"):
        stage.main()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    Path("params.yaml").write_text(yaml.safe_dump({"evaluate": {"backend": "inception"}}))
    with pytest.raises(StageError, match="pt_inception-2015-12-05-6726825d.pth") as err:
        stage.main()
    assert "evaluate.inception_weights" in str(err.value) and "curl -LO" in str(err.value)


def test_toy_measures_of_the_optimal_gan_on_the_1d_gaussian(prepared_gaussian: Path) -> None:
    from ganforge.metrics import evaluate_toy

    meta = load_meta(prepared_gaussian)
    test = load_split(prepared_gaussian, "test")

    class Perfect(torch.nn.Module):  # G(z) = mean + std z: exactly p_data
        def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return meta["mean"] + meta["std"] * z[:, :1]

    class Undecided(torch.nn.Module):  # D* = 1/2 everywhere
        def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return torch.zeros(len(x))

    spec = GeneratorSpec(arch="mlp", nz=4, sample_shape=(1,))
    cfg = EvaluateConfig(num_samples=5000)
    m = evaluate_toy(Perfect(), spec, meta, (test.data, test.labels), cfg, Undecided()).metrics
    assert m["jsd"] < 0.005 and m["jsd_max"] == pytest.approx(0.6931, abs=1e-4)
    assert m["v_value"] == pytest.approx(-1.3863, abs=1e-4) and m["v_value_gap"] == 0.0
    assert m["fake_mean"] == pytest.approx(meta["mean"], abs=0.05) and m["num_samples"] == 5000


def test_evaluate_stage_on_the_1d_gaussian(
    tmp_path, monkeypatch, blank_db, prepared_gaussian
) -> None:
    from pipeline import evaluate as stage

    _stage_dir(tmp_path, monkeypatch, blank_db, prepared_gaussian, {"num_samples": 1000})
    _save_untrained_mlp(nz=4, sample_shape=(1,))
    stage.main()
    m = json.loads(Path("reports/eval.json").read_text())
    assert 0 <= m["jsd"] <= m["jsd_max"] and "v_value" in m and "d_real" in m
    with open("plots/class_histogram.csv") as f:
        assert len(list(csv.DictReader(f))) == 40
    assert Path("plots/eval_samples.png").stat().st_size > 0
