"""docs/lectures.md's pictures as the `train` stage draws them, CI-sized: on the 1-D Gaussian
Figure 1 and the value of the game, on the ring G's samples over D and the modes per step."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ganforge.lectures.files import MODE_COLUMNS, VALUE_COLUMNS


def _train_on(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The train stage with params.yaml's recipe for these data (auto), cut to 300 steps."""
    from pipeline import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(prepared)
    params = {
        "seed": 0,
        "mlflow": {"experiment": "test-lectures"},
        "train": {"max_steps": 300, "fid_every": 0, "device": "cpu"},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    train.main()
    return tmp_path / "plots" / "lectures"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _drawn(path: Path) -> None:
    """A matplotlib figure: white paper with ink on it, wider than tall (a strip of panels)."""
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert pixels.shape[1] > pixels.shape[0] >= 200, (path.name, pixels.shape)
    assert 0.02 < (pixels < 200).mean() < 0.6, (path.name, (pixels < 200).mean())


def test_the_1d_gaussian_draws_figure_1_and_the_value_of_the_game(
    prepared_gaussian: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lectures = _train_on(prepared_gaussian, tmp_path, monkeypatch)
    _drawn(lectures / "figures" / "figure1.png")
    _drawn(lectures / "figures" / "saturation.png")
    assert not (lectures / "figures" / "modes.png").exists()  # no modes on one Gaussian
    value = _rows(lectures / "value.csv")
    assert list(value[0]) == list(VALUE_COLUMNS) and len(value) >= 10
    assert all(float(r["minus_log_4"]) == pytest.approx(-np.log(4), abs=1e-5) for r in value)
    # C(G) = −log 4 + 2·JSD is at least −log 4 and at most 0
    c_of_g = [float(r["value_at_d_star"]) for r in value]
    assert all(-np.log(4) - 1e-5 <= c <= 1e-5 for c in c_of_g), c_of_g  # CSV: 6 digits
    assert _rows(lectures / "modes.csv") == []  # header only: the plot stays undrawn
    densities = _rows(lectures / "densities.csv")
    assert densities and {"p_data", "p_g", "d", "d_star"} <= set(densities[0])


def test_the_ring_draws_g_over_d_and_counts_modes_per_step(
    prepared_ring: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lectures = _train_on(prepared_ring, tmp_path, monkeypatch)
    _drawn(lectures / "figures" / "modes.png")
    assert not (lectures / "figures" / "figure1.png").exists()
    modes = _rows(lectures / "modes.csv")
    assert list(modes[0]) == list(MODE_COLUMNS) and len(modes) >= 5
    assert all(0 <= float(r["modes_covered"]) <= float(r["num_modes"]) == 8 for r in modes)
    history = _rows(tmp_path / "plots" / "train_history.csv")  # per step in the history too
    assert {"modes_covered", "hq_share", "value_v"} <= set(history[0])
