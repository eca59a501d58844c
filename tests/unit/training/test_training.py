"""The training loop: determinism, exact resume, NaN stop, restart on model change, options."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from tiny_training import Kill
from tiny_training import tiny_config as tiny

from ganforge.training import (
    LAST_CHECKPOINT,
    Callback,
    GANTrainer,
    HealthMonitor,
    HistoryCSV,
    NonFiniteLossError,
    SampleGrid,
    fit,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_seeded_runs_are_identical(images) -> None:
    x, y = images
    a = fit(tiny(), x, y, seed=3)
    b = fit(tiny(), x, y, seed=3)
    c = fit(tiny(), x, y, seed=4)
    assert_same_state(a.generator.state_dict(), b.generator.state_dict())
    assert not torch.equal(a.generator.net[0].weight, c.generator.net[0].weight)
    assert a.step == 6 and [r["step"] for r in a.history] == [2, 4, 6]


@pytest.mark.parametrize(
    ("model", "d_conditioning"),
    [("dcgan", "projection"), ("dcgan", "concat"), ("mlp", "concat")],
)
def test_killed_run_resumes_to_the_same_weights(
    images, tmp_path: Path, model: str, d_conditioning: str
) -> None:
    x, y = images
    config = tiny(
        model=model,
        d_conditioning=d_conditioning,
        max_steps=7,
        checkpoint_every=3,
        instance_noise=0.1,
        labels="conditional",
        label_smoothing=0.1,
        ngf=8,
        ndf=8,
    )
    straight = fit(config, x, y, seed=1, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(config, x, y, seed=1, checkpoint_dir=tmp_path / "b", callbacks=[Kill(at=5)])
    assert torch.load(tmp_path / "b" / LAST_CHECKPOINT, weights_only=True)["step"] == 3
    resumed = fit(config, x, y, seed=1, checkpoint_dir=tmp_path / "b")
    assert resumed.resumed_from == 3 and resumed.step == 7
    assert_same_state(straight.generator.state_dict(), resumed.generator.state_dict())
    assert_same_state(straight.discriminator.state_dict(), resumed.discriminator.state_dict())
    assert_same_state(straight.ema.state_dict(), resumed.ema.state_dict())
    a = torch.load(tmp_path / "a" / LAST_CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "b" / LAST_CHECKPOINT, weights_only=True)
    for opt in ("opt_g", "opt_d"):
        for i, state in a[opt]["state"].items():
            for k, v in state.items():
                assert torch.equal(v, b[opt]["state"][i][k]), (opt, i, k)
    assert a["cursor"] == b["cursor"] and a["step"] == b["step"] == 7
    # the history of the killed session survives in the checkpoint
    assert [r["step"] for r in resumed.history] == [2, 4, 6, 7]


def test_finished_run_resumes_to_nothing(images, tmp_path: Path) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path)
    again = fit(tiny(), x, y, checkpoint_dir=tmp_path)
    assert again.resumed_from == 6 and again.step == 6 and len(again.history) == 3
    longer = fit(tiny(max_steps=8), x, y, checkpoint_dir=tmp_path)  # train on
    assert longer.resumed_from == 6 and longer.step == 8
    shorter = fit(tiny(max_steps=4), x, y, checkpoint_dir=tmp_path)  # cannot un-train: afresh
    assert shorter.resumed_from is None and shorter.step == 4
    assert "beyond this run's 4 steps" in shorter.restart_reasons[0]


@pytest.mark.parametrize("schedule", [{"instance_noise": 0.1}, {"lr_decay": 0.5}])
def test_a_longer_run_starts_fresh_when_a_schedule_spans_the_length(
    images, tmp_path: Path, schedule: dict
) -> None:
    # instance noise and the learning-rate decay are laid out over the run's length: steps
    # trained for 6 steps are not the first steps of an 8-step run
    x, y = images
    fit(tiny(**schedule), x, y, checkpoint_dir=tmp_path)
    longer = fit(tiny(max_steps=8, **schedule), x, y, checkpoint_dir=tmp_path)
    assert longer.resumed_from is None and longer.step == 8
    assert any("max_steps changed: 6 -> 8" in r for r in longer.restart_reasons)


def test_model_change_starts_fresh_with_a_warning(images, tmp_path: Path, caplog) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        result = fit(tiny(ngf=6), x, y, checkpoint_dir=tmp_path)
    assert result.resumed_from is None and result.step == 6
    assert any("ngf 4 -> 6" in r for r in result.restart_reasons)
    assert "starting fresh" in caplog.text
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        fit(tiny(ngf=6), x, y, seed=5, checkpoint_dir=tmp_path)
    assert "seed changed" in caplog.text


class Poison(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer) -> None:
        if trainer.step == self.at:
            with torch.no_grad():
                for p in trainer.d_core.parameters():
                    p.fill_(float("nan"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(images, tmp_path: Path) -> None:
    x, y = images
    config = tiny(max_steps=12, checkpoint_every=4, log_every=3)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        fit(config, x, y, checkpoint_dir=tmp_path, callbacks=[Poison(at=5)])
    state = torch.load(tmp_path / LAST_CHECKPOINT, weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["discriminator"].values())


def test_callbacks_write_history_and_sample_grids(images, tmp_path: Path) -> None:
    x, y = images
    config = tiny(max_steps=None, epochs=2, batch_size=40)  # 4 batches per epoch
    result = fit(
        config, x, y, callbacks=[HistoryCSV(tmp_path / "h.csv"), SampleGrid(tmp_path / "s")]
    )
    assert result.step == 8 and result.epoch == 2
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == (
        "step,loss_d,loss_g,d_real,d_fake,grad_norm_g,grad_norm_d,images_per_s,diversity,fid_val"
    )
    assert len(lines) == 1 + 4
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "epoch_0001.png",
        "epoch_0002.png",
    ]
    row = result.history[-1]
    assert 0 < row["d_real"] < 1 and 0 < row["d_fake"] < 1 and row["grad_norm_g"] > 0


@pytest.mark.parametrize(
    "overrides",
    [
        dict(loss="minimax", optimizer="sgd", lr_d=0.01, lr_g=0.01, d_steps=2),
        dict(loss="hinge", ema_decay=None, channels_last=False),
        dict(labels="conditional", amp="bf16"),  # bf16 autocast runs on CPU too
    ],
)
def test_options_train(images, overrides) -> None:
    x, y = images
    result = fit(tiny(max_steps=3, **overrides), x, y)
    assert result.step == 3 and all(torch.isfinite(p).all() for p in result.generator.parameters())
    if overrides.get("ema_decay", 0.9) is None:
        assert result.ema is None


def test_k_discriminator_steps_per_generator_step(images) -> None:
    x, y = images
    trainer = GANTrainer(tiny(d_steps=3, max_steps=2), spec=_spec(), data=x, labels=y)
    trainer.fit()
    assert trainer.sampler.cursor == 6  # 3 real batches per iteration
    assert trainer.opt_d.state_dict()["state"][0]["step"].item() == 6
    assert trainer.opt_g.state_dict()["state"][0]["step"].item() == 2


def _spec():
    from ganforge.training import make_spec

    return make_spec(tiny(), (1, 16, 16))


def test_health_monitor_warns_when_d_wins(caplog) -> None:
    monitor = HealthMonitor(d_fake_floor=0.02, patience=2)
    row = dict(step=1, d_fake=0.001, grad_norm_g=1e-6, diversity=1.0)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            monitor.on_log(None, row)  # type: ignore[arg-type]
    assert len(monitor.warnings) == 1 and "vanishing" in monitor.warnings[0]
    monitor.on_log(None, dict(row, d_fake=0.4, diversity=0.01))  # type: ignore[arg-type]
    monitor.on_log(None, dict(row, d_fake=0.4, diversity=0.01))  # type: ignore[arg-type]
    assert "collapse" in monitor.warnings[-1]


def test_sample_plots_for_toy_points(tmp_path: Path) -> None:
    points = torch.randn(64, 2)
    config = tiny(model="mlp", nz=2, ngf=8, ndf=8, max_steps=None, epochs=1, batch_size=32)
    fit(config, points, callbacks=[SampleGrid(tmp_path)])
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_0001.png"]


def test_data_too_small_for_a_batch_is_a_clear_error(images) -> None:
    x, y = images
    with pytest.raises(ValueError, match="batch_size"):
        fit(tiny(batch_size=200), x, y)


def test_a_changed_learning_rate_starts_fresh(images, tmp_path: Path) -> None:
    """Resuming under another lr would match no uninterrupted run: DVC's result must not
    depend on which checkpoints happen to lie in the persisted folder."""
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path)
    other = fit(tiny(lr_g=1e-3, max_steps=8), x, y, checkpoint_dir=tmp_path)
    assert other.resumed_from is None
    assert any("lr_g changed" in r for r in other.restart_reasons)
    logging_only = fit(tiny(lr_g=1e-3, max_steps=8, log_every=4), x, y, checkpoint_dir=tmp_path)
    assert logging_only.resumed_from == 8


def test_training_on_equals_an_uninterrupted_longer_run(images, tmp_path: Path) -> None:
    x, y = images
    fit(tiny(), x, y, checkpoint_dir=tmp_path / "a")
    longer = fit(tiny(max_steps=8), x, y, checkpoint_dir=tmp_path / "a")
    straight = fit(tiny(max_steps=8), x, y, checkpoint_dir=tmp_path / "b")
    assert longer.resumed_from == 6
    assert_same_state(straight.generator.state_dict(), longer.generator.state_dict())


def test_health_monitor_quiet_while_g_still_learns() -> None:
    """D ahead with a healthy G gradient (the non-saturating loss early on) is no alarm."""
    monitor = HealthMonitor(d_fake_floor=0.02, patience=2)
    for step in range(5):
        monitor.on_log(None, dict(step=step, d_fake=0.001, grad_norm_g=0.5, diversity=1.0))  # type: ignore[arg-type]
    assert monitor.warnings == []


@pytest.mark.parametrize(
    "overrides",
    [
        dict(augment=["color", "translation", "cutout"], r1_gamma=1.0, r1_every=2),
        dict(d_norm="spectral", mbstd_group=4, pack=2, augment=["translation"]),
        dict(g_upsample="resize"),
    ],
)
def test_resume_is_exact_with_augmentation_and_regularisers(
    images, tmp_path: Path, overrides
) -> None:
    # DiffAugment and lazy R1 draw from / depend on the seeded streams a checkpoint restores.
    x, _ = images
    config = tiny(max_steps=7, checkpoint_every=3, ngf=8, ndf=8, **overrides)
    straight = fit(config, x, seed=1, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(config, x, seed=1, checkpoint_dir=tmp_path / "b", callbacks=[Kill(at=5)])
    resumed = fit(config, x, seed=1, checkpoint_dir=tmp_path / "b")
    assert resumed.resumed_from == 3 and resumed.step == 7
    assert_same_state(straight.generator.state_dict(), resumed.generator.state_dict())
    assert_same_state(straight.discriminator.state_dict(), resumed.discriminator.state_dict())
    assert_same_state(straight.ema.state_dict(), resumed.ema.state_dict())
