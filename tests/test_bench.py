"""The training benchmark still runs end to end (tiny sizes: its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_throughput_prints_every_contender_with_its_ratio() -> None:
    args = ["--sizes", "16", "--steps", "1", "--rounds", "1", "--width", "8"]
    args += ["--batch-size", "8", "--threads", "1", "--ablation"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_throughput.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        if line.startswith("  "):  # a contender: name, img/s, ratio to the examples loop
            *name, rate, ratio = line.split()
            rows[" ".join(name)] = (float(rate), float(ratio))
    expected = {
        "examples",
        "examples 0 workers",
        "+ in-memory batches",
        "+ channels_last",
        "+ D frozen in G step",
        "ganforge",
    }
    assert set(rows) == expected, out
    assert rows["examples"][1] == 1.0
    for rate, ratio in rows.values():
        assert rate > 0 and ratio > 0


def test_generate_memory_prints_the_peak_of_each_request() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate_memory.py")]
        + ["--size", "16", "--folder-num", "300"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rows = [line.split() for line in out.splitlines() if "->" in line]
    assert [(r[0], r[2]) for r in rows] == [("4096", "grid"), ("300", "folder")], out
    for row in rows:
        loaded, peak = float(row[-3]), float(row[-2])
        assert 0 < loaded <= peak, row
