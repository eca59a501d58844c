"""Per-device amp / channels_last / compile choices: every branch, the config key, the trainer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError

from ganforge.config import TrainConfig
from ganforge.device import cpu_has_bf16_units
from ganforge.recipe import DataFacts
from ganforge.training import GANTrainer, fit, make_spec
from ganforge.training.amp import Precision, precision_for
from ganforge.training.device_policy import (
    COMPILE_CHANNELS_LAST_BUG,
    choose_device_settings,
    log_choices,
)
from pipeline.params import ParamsError, load_params

# ------------------------------------------------------------------ amp


def test_auto_amp_is_fp32_with_tf32_on_cuda_naming_the_bench_not_a_figure() -> None:
    choice = choose_device_settings("cuda", "image")
    assert choice.amp == "tf32"
    assert "bench/train_throughput.py" in choice.reasons["amp"]
    assert "img/s" not in choice.reasons["amp"] and "H100" not in choice.reasons["amp"]


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_explicit_amp_is_kept_on_cuda(amp: str) -> None:
    choice = choose_device_settings("cuda", "image", amp=amp)
    assert choice.amp == amp and choice.reasons["amp"] == "as set"


def test_auto_amp_on_cpu_is_bf16_for_images_only_where_the_cpu_has_bf16_units() -> None:
    fast = choose_device_settings("cpu", "image", cpu_bf16=True)
    assert fast.amp == "bf16"
    assert "bench/train_throughput.py --bf16" in fast.reasons["amp"]
    assert "bench/quality.py" in fast.reasons["amp"]
    emulated = choose_device_settings("cpu", "image", cpu_bf16=False)
    assert emulated.amp == "off" and "no bf16 units" in emulated.reasons["amp"]
    points = choose_device_settings("cpu", "points", cpu_bf16=True)
    assert points.amp == "off" and "point data" in points.reasons["amp"]
    # the probe is read on CPU only
    assert choose_device_settings("cuda", "image", cpu_bf16=True).amp == "tf32"
    assert choose_device_settings("mps", "image", cpu_bf16=True).amp == "off"


def test_explicit_amp_on_cpu_wins_over_the_bf16_units() -> None:
    assert choose_device_settings("cpu", "image", amp="off", cpu_bf16=True).amp == "off"
    assert choose_device_settings("cpu", "points", amp="bf16").amp == "bf16"
    assert choose_device_settings("cpu", "image", amp="bf16").amp == "bf16"


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({}, False),
        ({"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": False}, False),
        ({"_is_avx512_bf16_supported": True, "_is_amx_tile_supported": False}, True),
        ({"_is_amx_tile_supported": True}, True),
    ],
)
def test_the_bf16_probe_reads_torchs_cpu_checks_and_a_missing_one_as_no(
    monkeypatch: pytest.MonkeyPatch, present: dict[str, bool], expected: bool
) -> None:
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    for name, value in present.items():
        monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)
    assert cpu_has_bf16_units() is expected


def test_fp16_off_cuda_and_unknown_values_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="amp: fp16 needs CUDA.*use amp: auto, off or bf16"):
        choose_device_settings("cpu", "image", amp="fp16")
    with pytest.raises(ValueError, match="amp 'fp8': use auto, off, bf16 or fp16"):
        choose_device_settings("cuda", "image", amp="fp8")
    with pytest.raises(ValueError, match="channels_last 'yes': use auto, true or false"):
        choose_device_settings("cpu", "image", channels_last="yes")
    with pytest.raises(ValueError, match="model kind 'video'"):
        choose_device_settings("cpu", "video")  # type: ignore[arg-type]


# ------------------------------------------------------------------ channels_last and compile


@pytest.mark.parametrize(
    ("device", "expected", "because"),
    [("cuda", False, "slower"), ("cpu", True, "faster"), ("mps", False, "not measured")],
)
def test_auto_channels_last_per_device(device: str, expected: bool, because: str) -> None:
    choice = choose_device_settings(device, "image", amp="off")
    assert choice.channels_last is expected
    assert because in choice.reasons["channels_last"]
    assert choice.warnings == ()


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("asked", [True, False])
def test_explicit_channels_last_is_kept_without_compile(device: str, asked: bool) -> None:
    choice = choose_device_settings(device, "image", channels_last=asked)
    assert choice.channels_last is asked and choice.reasons["channels_last"] == "as set"


@pytest.mark.parametrize("asked", ["auto", True])
def test_points_never_use_channels_last(asked: bool | str) -> None:
    choice = choose_device_settings("cpu", "points", channels_last=asked)
    assert choice.channels_last is False and "no image layout" in choice.reasons["channels_last"]


def test_compile_switches_explicit_channels_last_off_on_cuda_with_a_warning() -> None:
    choice = choose_device_settings("cuda", "image", channels_last=True, compile=True)
    assert choice.channels_last is False and choice.compile is True
    assert COMPILE_CHANNELS_LAST_BUG in choice.reasons["channels_last"]
    assert len(choice.warnings) == 1 and COMPILE_CHANNELS_LAST_BUG in choice.warnings[0]


def test_compile_with_auto_on_cuda_is_quietly_nchw_and_cpu_keeps_channels_last() -> None:
    quiet = choose_device_settings("cuda", "image", compile=True)
    assert quiet.channels_last is False and quiet.warnings == ()
    cpu = choose_device_settings("cpu", "image", channels_last=True, compile=True)
    assert cpu.channels_last is True and cpu.compile is True and cpu.warnings == ()


def test_log_choices_warns_about_each_override(caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_device_settings("cuda", "image", channels_last=True, compile=True)
    with caplog.at_level(logging.INFO, logger="ganforge.training.device_policy"):
        log_choices(choice, "cuda")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and COMPILE_CHANNELS_LAST_BUG in warnings[0].getMessage()
    assert any("amp tf32" in r.getMessage() for r in caplog.records)
    assert choice.as_dict()["channels_last"] is False


# ------------------------------------------------------------------ precision


def test_precision_objects_follow_the_choice() -> None:
    cuda = torch.device("cuda")
    assert precision_for("tf32", cuda).name == "tf32"
    assert precision_for("tf32", cuda).dtype is None
    assert precision_for("fp16", cuda).scaled
    assert precision_for("bf16", torch.device("cpu")).name == "bf16"


def test_tf32_backends_are_set_consistently_and_only_when_asked() -> None:
    matmul_before = torch.get_float32_matmul_precision()
    conv_before = torch.backends.cudnn.conv.fp32_precision
    try:
        Precision("cpu", None).configure_backends()
        Precision("cuda", None, tf32=False).configure_backends()
        assert torch.get_float32_matmul_precision() == matmul_before
        Precision("cuda", None, tf32=True).configure_backends()
        # Readable through the legacy getter too (inductor reads it; mixing APIs raises).
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    finally:
        torch.set_float32_matmul_precision(matmul_before)
        torch.backends.cudnn.conv.fp32_precision = conv_before


# ------------------------------------------------------------------ config key


def test_channels_last_key_takes_auto_or_a_boolean_only() -> None:
    assert TrainConfig().channels_last == "auto"
    assert TrainConfig(channels_last=True).channels_last is True
    assert TrainConfig(channels_last=False).channels_last is False
    for bad in ("on", 1, "maybe", None):
        with pytest.raises(ValidationError, match="allowed: auto, true or false"):
            TrainConfig(channels_last=bad)


def test_bad_channels_last_in_params_yaml_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": {"channels_last": "maybe"}}))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "train.channels_last = 'maybe'" in err.value.message
    assert "allowed: auto, true or false" in err.value.message


def test_a_bare_yaml_off_for_amp_means_off_and_true_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  amp: off\n")  # YAML 1.1 reads a bare off as false
    facts = DataFacts(sample_shape=(1, 8, 8), num_train=100, num_classes=10)
    assert load_params(path).train.resolve(facts).config.amp == "off"
    with pytest.raises(ValidationError, match="'auto', 'off', 'bf16' or 'fp16'"):
        TrainConfig(amp=True)


# ------------------------------------------------------------------ the trainer honours it


def _images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    # RGB: with one channel an NCHW batch also counts as channels_last-contiguous.
    return torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=gen)


def _tiny(**overrides) -> TrainConfig:
    options = dict(nz=8, ngf=4, ndf=4, batch_size=16, max_steps=2, device="cpu", ema_decay=None)
    return TrainConfig(**(options | overrides))


@pytest.mark.parametrize(("asked", "expected"), [("auto", True), (False, False), (True, True)])
def test_trainer_lays_out_weights_and_batches_as_chosen_on_cpu(asked, expected) -> None:
    x = _images()
    config = _tiny(channels_last=asked)
    trainer = GANTrainer(config, make_spec(config, x.shape[1:]), x)
    assert trainer.channels_last is expected
    weight = trainer.g_core.net[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) is expected
    assert weight.is_contiguous() is not expected
    real, _ = trainer.sampler.next_batch()
    assert real.is_contiguous(memory_format=torch.channels_last) is expected


@pytest.mark.parametrize(("units", "amp"), [(False, "off"), (True, "bf16")])
def test_fit_reports_the_resolved_choices_and_their_reasons(
    monkeypatch: pytest.MonkeyPatch, units: bool, amp: str
) -> None:
    # what this machine's CPU has must not decide the test: the probe is replaced
    monkeypatch.setattr("ganforge.training.trainer.cpu_has_bf16_units", lambda: units)
    x = _images()
    result = fit(_tiny(), x, seed=0)
    assert result.channels_last is True and result.amp == amp
    assert set(result.device_reasons) == {"amp", "channels_last", "compile"}
    assert "CPU" in result.device_reasons["channels_last"]
    points = torch.randn(64, 2)
    toy = fit(_tiny(model="mlp", channels_last=True), points, seed=0)
    assert toy.channels_last is False and toy.amp == "off"
