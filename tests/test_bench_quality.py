"""bench/quality.py runs the real stages end to end (tiny settings: its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import quality  # noqa: E402


def test_overrides_build_params_from_the_committed_ones() -> None:
    base = {"seed": 0, "train": {"model": "dcgan", "epochs": 60}}
    params = quality.build_params(base, {"train.model": "mlp", "seed": 2})
    assert params == {"seed": 2, "train": {"model": "mlp", "epochs": 60}}
    assert base["train"]["model"] == "dcgan"
    assert quality.parse_sets(["train.max_steps=20", "train.conditional=true"]) == {
        "train.max_steps": 20,
        "train.conditional": True,
    }
    with pytest.raises(SystemExit, match="no section 'nope'"):
        quality.build_params(base, {"nope.x": 1})


@pytest.mark.slow
def test_quality_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    args = ["--configs", "gaussian_1d", "--seeds", "0", "--json", str(out)]
    for s in ("train.max_steps=20", "prepare.num_points=1000", "evaluate.num_samples=500"):
        args += ["--set", s]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "quality.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["config", "seed", "FID"]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["config"] == "gaussian_1d" and row["steps"] == 20
    assert 0 <= row["jsd"] <= 0.7 and row["best_step"] == 20 and row["train_seconds"] > 0
