"""bench/saturation.py runs end to end (tiny: its figures are not checked), and docs/lectures.md
names commands and tests that exist."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_saturation_bench_overlays_both_objectives(tmp_path: Path) -> None:
    args = ["--steps", "12", "--out", str(tmp_path), "--json", str(tmp_path / "runs.json")]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "saturation.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    ).stdout
    assert "minimax" in out and "non-saturating" in out
    assert "JSD first halves at step" in out
    assert (tmp_path / "overlay.png").stat().st_size > 10_000
    for objective in ("minimax", "non_saturating"):
        assert (tmp_path / objective / "figures" / "figure1.png").is_file()
        assert (tmp_path / objective / "value.csv").is_file()
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert runs["overrides"] == {"d_steps": 1, "optimizer": "sgd", "lr_g": 0.05, "lr_d": 0.1}
    steps = [[r["step"] for r in runs[o]["history"]] for o in ("minimax", "non_saturating")]
    assert steps[0] == steps[1] and steps[0][-1] == 12  # both runs logged at the same steps
    # same seed, same initial weights and first batch: the first D(G(z)) agree
    first = [runs[o]["history"][0]["d_fake"] for o in ("minimax", "non_saturating")]
    assert abs(first[0] - first[1]) < 0.05


def test_lectures_page_names_tests_and_files_that_exist() -> None:
    text = (ROOT / "docs" / "lectures.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(named) >= 15
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (ROOT / path).is_file() or f"def {name}(" not in (ROOT / path).read_text()
    ]
    assert not missing, missing
    for path in re.findall(r"`((?:bench|src/ganforge)/[\w/]+\.py)`", text):
        assert (ROOT / path).is_file(), path
