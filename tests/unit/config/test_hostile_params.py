"""Size and device problems surface before a stage spends time, in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from pipeline.params import ParamsError, load_params


def _params(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("size", [48, 512, 8])
def test_sizes_dcgan_cannot_build_are_refused_by_the_params_check(tmp_path: Path, size) -> None:
    path = _params(tmp_path, {"prepare": {"image_size": size}, "train": {"model": "dcgan"}})
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = err.value.message
    assert f"prepare.image_size = {size}" in message
    assert "16, 32, 64, 128 or 256" in message and "train.model: mlp" in message


@pytest.mark.parametrize(
    "data",
    [
        {"prepare": {"image_size": 64}, "train": {"model": "dcgan"}},
        {"prepare": {"image_size": 48}, "train": {"model": "mlp"}},  # an MLP takes any size
        {"prepare": {"image_size": 48, "dataset": "ring_2d"}},  # points: no image size used
    ],
)
def test_buildable_combinations_pass(tmp_path: Path, data: dict) -> None:
    load_params(_params(tmp_path, data))


def test_prepare_refuses_an_unbuildable_size_before_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import prepare

    monkeypatch.chdir(tmp_path)
    _params(tmp_path, {"prepare": {"dataset": "digits", "image_size": 48}})
    with pytest.raises(SystemExit) as exit_info:
        prepare.main()
    assert "prepare.image_size = 48" in str(exit_info.value.code)
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_only_machine_says_exactly_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared_digits_16: Path
) -> None:
    from pipeline import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(prepared_digits_16)
    _params(tmp_path, {"prepare": {"image_size": 16}, "train": {"device": "cuda", "ngf": 4}})
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    message = str(exit_info.value.code)
    assert message.startswith("train.device = 'cuda'")
    assert "no usable GPU" in message and "device: auto" in message
    assert "DDP" not in message
    assert not (tmp_path / "models").exists() and not (tmp_path / "mlflow.db").exists()
