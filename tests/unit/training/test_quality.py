"""Quality during training: best-score selection and snapshot, exact resume, collapse alarms."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from tiny_training import tiny_config
from torch import nn

from ganforge.classifier import save_classifier, train_classifier
from ganforge.config import ClassifierConfig, TrainConfig
from ganforge.data import load_split
from ganforge.data.toy import ring_modes
from ganforge.metrics import ClassifierFeatureNet
from ganforge.models import build_generator, load_generator
from ganforge.training import (
    Callback,
    GANTrainer,
    HealthMonitor,
    ModeQuality,
    QualityMonitor,
    SelectionMeasure,
    ValidationFID,
    make_spec,
    starved_classes,
    write_history_csv,
)

CURVE = {2: 5.0, 4: 3.0, 6: 1.0, 8: 2.0, 10: 4.0}  # the best score (lowest) at step 6


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> TrainConfig:
    return tiny_config(**({"max_steps": 10} | overrides))


class Scripted(SelectionMeasure):
    """A validation score read off `CURVE` at the trainer's step."""

    column = "fid_val"

    def __init__(self, trainer: GANTrainer) -> None:
        self.trainer = trainer

    def __call__(self, samples: torch.Tensor):
        assert samples.dtype == torch.uint8 and len(samples) == 8
        return CURVE[self.trainer.step], None


class Capture(Callback):
    """The weights of G and its EMA at every log step."""

    def __init__(self) -> None:
        self.states: dict[int, dict] = {}

    def on_log(self, trainer, row) -> None:
        self.states[int(row["step"])] = {
            "generator": {k: v.clone() for k, v in trainer.g_core.state_dict().items()},
            "generator_ema": {k: v.clone() for k, v in trainer.ema.module.state_dict().items()},
        }


def _run(images, ckpt: Path | None, stop_after: int | None = None, monitored: bool = True):
    x, y = images
    config = tiny()
    trainer = GANTrainer(config, make_spec(config, x.shape[1:]), x, y)
    if ckpt is not None:
        trainer.resume(ckpt)
    monitor = QualityMonitor(Scripted(trainer), every=2, num_samples=8, keep="best")
    capture = Capture()
    result = trainer.fit([monitor, capture] if monitored else [capture], ckpt, stop_after)
    return result, monitor, capture


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_best_score_selection_picks_the_right_step_and_its_weights(images) -> None:
    result, monitor, capture = _run(images, None)
    assert monitor.curve == sorted(CURVE.items())
    assert monitor.best_step == 6 and monitor.best_value == 1.0
    best = monitor.best_weights()
    assert_same_state(best["generator"], capture.states[6]["generator"])
    assert_same_state(best["generator_ema"], capture.states[6]["generator_ema"])
    final = result.generator.state_dict()
    assert any(not torch.equal(final[k], best["generator"][k]) for k in final)
    assert [r.get("fid_val") for r in result.history] == [CURVE[s] for s in (2, 4, 6, 8, 10)]


def test_higher_is_better_measures_pick_the_maximum() -> None:
    measure = ModeQuality(ring_modes(), 0.02)
    assert measure.is_better(0.5, 0.4) and not measure.is_better(0.3, 0.4)
    assert not measure.is_better(float("nan"), None)
    assert measure.is_better(0.0, 0.0)  # a flat score keeps the newer G


def test_the_monitor_leaves_training_unchanged(images) -> None:
    with_monitor, _, _ = _run(images, None)
    without, _, _ = _run(images, None, monitored=False)
    assert_same_state(with_monitor.generator.state_dict(), without.generator.state_dict())
    assert_same_state(with_monitor.ema.state_dict(), without.ema.state_dict())


def test_best_snapshot_and_curve_survive_a_resume(images, tmp_path: Path) -> None:
    straight, straight_monitor, _ = _run(images, tmp_path / "b")
    _run(images, tmp_path / "a", stop_after=7)  # interrupted after the best step (6)
    resumed, monitor, _ = _run(images, tmp_path / "a")
    assert resumed.resumed_from == 7
    assert monitor.curve == straight_monitor.curve and monitor.best_step == 6
    for key in ("generator", "generator_ema", "discriminator"):
        assert_same_state(monitor.best_weights()[key], straight_monitor.best_weights()[key])
    assert_same_state(resumed.generator.state_dict(), straight.generator.state_dict())


# ------------------------------------------------------------------ collapse alarm
class Bank(nn.Module):
    """A stand-in generator: z picks one of `bank`'s rows (float samples in G's range)."""

    def __init__(self, bank: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bank", bank)

    def forward(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        idx = (z[:, 0].abs() * 1e4).long() % len(self.bank)
        return self.bank[idx]


def _stub(module: nn.Module, nz: int, is_image: bool, total: int = 1000) -> SimpleNamespace:
    spec = SimpleNamespace(nz=nz, conditional=False, is_image=is_image, num_classes=0)
    return SimpleNamespace(
        spec=spec,
        ema=None,
        g_core=module,
        d_core=nn.Linear(1, 1),
        device="cpu",
        step=0,
        total_steps=total,
    )


def _ring_points(modes: list[int], n: int = 4000) -> torch.Tensor:
    centres = torch.as_tensor(ring_modes(), dtype=torch.float32)
    pick = torch.tensor(modes)[torch.arange(n) % len(modes)]
    return centres[pick] + 0.02 * torch.randn(n, 2, generator=torch.Generator().manual_seed(1))


def _log_steps(monitor: QualityMonitor, trainer, steps) -> None:
    for step in steps:
        trainer.step = step
        monitor.on_log(trainer, {"step": step})


def _ring_monitor() -> QualityMonitor:
    return QualityMonitor(ModeQuality(ring_modes(), 0.02), 100, 1000, prior=torch.ones(8))


def test_mode_quality_of_ring_generators() -> None:
    measure = ModeQuality(ring_modes(), 0.02)
    perfect, _ = measure(_ring_points(list(range(8))))
    three, hist = measure(_ring_points([0, 3, 5]))
    angle = torch.rand(4000, generator=torch.Generator().manual_seed(2)) * 6.2832
    smeared, _ = measure(2.0 * torch.stack([angle.cos(), angle.sin()], 1))
    assert perfect > 0.95 and three == pytest.approx(3 / 8, abs=0.02) and smeared < 0.2
    assert starved_classes(hist, torch.ones(8)) == [1, 2, 4, 6, 7]


def test_collapse_alarm_fires_on_3_of_8_ring_modes_after_warmup() -> None:
    monitor = _ring_monitor()
    trainer = _stub(Bank(_ring_points([0, 3, 5])), nz=2, is_image=False)
    _log_steps(monitor, trainer, [100, 200])  # within the warm-up: silent
    assert monitor.warnings == []
    _log_steps(monitor, trainer, [300, 400, 500])
    assert len(monitor.warnings) == 1 and "5 of 8" in monitor.warnings[0]


def test_collapse_alarm_silent_on_full_coverage_and_on_an_untrained_g_early() -> None:
    monitor = _ring_monitor()
    _log_steps(monitor, _stub(Bank(_ring_points(list(range(8)))), 2, False), range(100, 1100, 100))
    assert monitor.warnings == []
    config = TrainConfig(model="mlp", nz=2, ngf=16, ndf=16)
    torch.manual_seed(0)
    untrained = build_generator(make_spec(config, (2,)))
    for steps in ([100, 200], [300, 400, 500]):  # early, and after the warm-up
        monitor = _ring_monitor()
        _log_steps(monitor, _stub(untrained, 2, False), steps)
        assert monitor.warnings == []


@pytest.fixture(scope="module")
def digits_classifier(prepared_digits_16: Path):
    train = load_split(prepared_digits_16, "train")
    cfg = ClassifierConfig(epochs=4, width=16, feature_dim=32, lr=0.01, batch_size=128)
    return train_classifier(train.data, train.labels, 10, cfg, seed=0).model


def test_collapse_alarm_on_one_digit_class_and_fid_tells_it_apart(
    prepared_digits_16: Path, digits_classifier
) -> None:
    train = load_split(prepared_digits_16, "train")
    val = load_split(prepared_digits_16, "val")
    as_float = train.data.float() / 127.5 - 1.0
    prior = torch.bincount(train.labels, minlength=10)
    scores = {}
    for name, bank in (("one", as_float[train.labels == 3]), ("all", as_float)):
        measure = ValidationFID(ClassifierFeatureNet(digits_classifier), val.data)
        monitor = QualityMonitor(measure, 100, 500, prior=prior)
        _log_steps(monitor, _stub(Bank(bank), 4, True), [300, 400])
        scores[name] = (monitor.best_value, monitor.warnings)
    torch.manual_seed(0)
    spec = make_spec(TrainConfig(ngf=8), (1, 16, 16))
    untrained = build_generator(spec)  # the classifier calls all its blobs "8", confidently
    monitor = QualityMonitor(
        ValidationFID(ClassifierFeatureNet(digits_classifier), val.data), 100, 500, prior=prior
    )
    _log_steps(monitor, _stub(untrained, spec.nz, True), [300, 400, 500])
    assert monitor.warnings == []
    assert scores["all"][1] == [] and len(scores["one"][1]) == 1
    # the small test classifier calls some 3s 5 or 9; most classes still get nothing
    starved = int(re.search(r"(\d+) of 10", scores["one"][1][0]).group(1))
    assert starved >= 6
    assert scores["one"][0] > 5 * scores["all"][0]


def test_too_few_samples_for_a_full_rank_fid_are_refused(
    prepared_digits_16: Path, digits_classifier
) -> None:
    val = load_split(prepared_digits_16, "val")
    net = ClassifierFeatureNet(digits_classifier)
    with pytest.raises(ValueError, match="val_fraction"):
        ValidationFID(net, val.data[:20])
    with pytest.raises(ValueError, match="train.fid_samples = 10 .* at least 33"):
        QualityMonitor(ValidationFID(net, val.data), 100, 10)


def test_health_monitor_spread_alarm_waits_for_warmup() -> None:
    monitor = HealthMonitor(patience=2)
    trainer = SimpleNamespace(total_steps=1000, config=None)
    for step in range(10, 80, 10):  # an untrained G at step 50: every z gives the same output
        monitor.on_log(trainer, dict(step=step, d_fake=0.5, grad_norm_g=1.0, diversity=0.01))
    assert monitor.warnings == []
    for step in (300, 310):
        monitor.on_log(trainer, dict(step=step, d_fake=0.5, grad_norm_g=1.0, diversity=0.01))
    assert len(monitor.warnings) == 1 and "collapse" in monitor.warnings[0]


def test_history_csv_has_diversity_and_the_score_column_only_when_scored(tmp_path: Path) -> None:
    rows = [{"step": 10, "diversity": 0.5}, {"step": 20, "diversity": 0.6, "jsd_val": 0.01}]
    write_history_csv(tmp_path / "a.csv", rows)
    read = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert read[0]["diversity"] == "0.5" and read[0]["jsd_val"] == ""
    assert read[1]["jsd_val"] == "0.01"
    write_history_csv(tmp_path / "b.csv", rows[:1])
    header = next(csv.DictReader((tmp_path / "b.csv").open()))
    # fid_val always has its column (dvc.yaml's fid_curve plot reads it); other scores only
    # when some row has them
    assert "fid_val" in header and "jsd_val" not in header


# ------------------------------------------------------------------ the train stage
def test_train_stage_keeps_the_best_validation_fid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared_digits_16: Path, digits_classifier
) -> None:
    import mlflow

    from pipeline import train as stage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(prepared_digits_16)
    (tmp_path / "models").mkdir()
    save_classifier("models/classifier.pt", digits_classifier)
    train = dict(
        nz=16, ngf=8, ndf=8, batch_size=64, max_steps=30, log_every=5, checkpoint_every=10,
        num_sample_images=16, device="cpu", fid_every=10, fid_samples=64,
    )  # fmt: skip
    params = {"seed": 0, "mlflow": {"experiment": "test-quality"}, "train": train}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage.main()

    metrics = json.loads(Path("reports/train.json").read_text())
    rows = list(csv.DictReader(Path("plots/train_history.csv").open()))
    curve = {int(r["step"]): float(r["fid_val"]) for r in rows if r["fid_val"]}
    assert sorted(curve) == [10, 20, 30]
    best = min(curve, key=curve.get)
    assert metrics["kept"] == "best" and metrics["best_step"] == best
    assert metrics["best_fid_val"] == pytest.approx(curve[best], rel=1e-5)
    assert metrics["quality_seconds_per_evaluation"] > 0
    _, _, extra = load_generator("models/generator.pt")
    assert extra["step"] == best and extra["kept"] == "best"
    saved = torch.load("models/generator.pt", weights_only=True)["generator_ema"]
    ckpt = torch.load("models/checkpoints/last.pt", weights_only=True)
    snapshot = ckpt["callbacks"]["quality_monitor"]["best_state"]["generator_ema"]
    assert_same_state(saved, snapshot)
    run_id = json.loads(Path("models/mlflow_run.json").read_text())["run_id"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    history = mlflow.MlflowClient().get_metric_history(run_id, "fid_val")
    assert [m.step for m in history] == [10, 20, 30]
