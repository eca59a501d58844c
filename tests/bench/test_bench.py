"""The training benchmark still runs end to end (tiny sizes: its figures are not checked)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def test_train_throughput_prints_every_contender_with_its_ratio() -> None:
    args = ["--sizes", "16", "--steps", "1", "--rounds", "1", "--width", "8"]
    args += ["--batch-size", "8", "--threads", "1", "--ablation", "--bf16"]
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
        "ganforge bf16",
    }
    assert set(rows) == expected, out
    assert rows["examples"][1] == 1.0
    for rate, ratio in rows.values():
        assert rate > 0 and ratio > 0


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    script = str(ROOT / "bench" / "train_throughput.py")
    return subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, timeout=300
    )


def test_rgb_digits_run_through_both_loops() -> None:
    done = _bench("--sizes", "16", "--steps", "1", "--rounds", "1", "--width", "8",
                  "--batch-size", "8", "--threads", "1", "--channels", "3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert names == ["examples", "examples", "ganforge"], done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_clear_line() -> None:
    done = _bench("--device", "cuda", "--sizes", "16")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device cuda: this machine has no usable GPU" in lines[0]


def test_measure_waits_for_the_device_around_every_timed_round() -> None:
    spec = importlib.util.spec_from_file_location("tt", ROOT / "bench" / "train_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    events: list[str] = []
    runs = {"a": lambda n: events.append(f"a{n}"), "b": lambda n: events.append(f"b{n}")}
    median = bench.measure(runs, 3, 2, sync=lambda: events.append("sync"))
    assert set(median) == {"a", "b"} and all(s >= 0 for s in median.values())
    # warm-ups, then per round each contender in rotated order, a sync either side
    timed = ["sync", "a3", "sync", "sync", "b3", "sync", "sync", "b3", "sync", "sync", "a3", "sync"]
    assert events == ["a2", "b2", *timed]


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
