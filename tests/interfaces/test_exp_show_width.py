"""The README's `dvc exp show` line fits 160 columns after a changed training param.

A small git + DVC project with the pipeline's metric, param and dependency names (a train stage
writing models/generator.pt, an evaluate stage reading it): `dvc exp run -S train.epochs=2`
changes a param, a dependency hash and the scores, as in the README. Bounded: a few seconds
of DVC.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TRAIN = """
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
pathlib.Path("models").mkdir(exist_ok=True)
pathlib.Path("models/generator.pt").write_text(json.dumps({"epochs": p["epochs"]}))
pathlib.Path("metrics").mkdir(exist_ok=True)
json.dump({"train_seconds": 140.25 * p["epochs"]}, open("metrics/train.json", "w"))
"""
EVALUATE = """
import json, pathlib
e = 10 * json.loads(pathlib.Path("models/generator.pt").read_text())["epochs"]
json.dump({"fid": 0.5 + e / 1000, "fid_floor": 0.16, "fid_over_floor": 3.1 + e / 100,
           "precision": 0.84, "recall": 0.88 - e / 1000, "class_kl": 0.01 + e / 1e4,
           "classes_covered": 10, "is_mean": 9.1 + e / 100, "kid_mean": 0.001 * e},
          open("metrics/eval.json", "w"))
"""


def _readme_exp_show() -> list[str]:
    """The `dvc exp show` command of the README's command block, as argv."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("dvc exp show"):
            return shlex.split(line.split("#", 1)[0])
    raise AssertionError("README has no `dvc exp show` line")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_readme_exp_show_fits_160_columns(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "train.py").write_text(TRAIN)
    (work / "evaluate.py").write_text(EVALUATE)
    for name in ("src/ganforge/data", "src/ganforge/models", "pipeline/common.py"):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(name)  # dependency columns named by a path, as in dvc.yaml
    stages = {
        "train": {
            "cmd": "python train.py",
            "deps": ["train.py", "src/ganforge/data", "src/ganforge/models", "pipeline/common.py"],
            "params": ["train", "seed", "mlflow"],
            "outs": ["models/generator.pt"],
            "metrics": [{"metrics/train.json": {"cache": False}}],
        },
        "evaluate": {
            "cmd": "python evaluate.py",
            "deps": ["evaluate.py", "models/generator.pt", "pipeline/common.py"],
            "params": ["evaluate", "export", "prepare", "classifier"],
            "metrics": [{"metrics/eval.json": {"cache": False}}],
        },
    }
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    _run(["git", "init", "-q"], work, env)
    _run([sys.executable, "-m", "dvc", "init", "-q"], work, env)
    _run([sys.executable, "-m", "dvc", "repro", "-q"], work, env)
    _run([*git, "add", "-A"], work, env)
    _run([*git, "commit", "-qm", "baseline"], work, env)
    _run([sys.executable, "-m", "dvc", "exp", "run", "-q", "-S", "train.epochs=2"], work, env)

    command = _readme_exp_show()
    assert command[:3] == ["dvc", "exp", "show"]
    wide = {**env, "COLUMNS": "1000"}
    every = _run([sys.executable, "-m", "dvc", "exp", "show", "--no-pager"], work, wide)
    assert max(len(line) for line in every.splitlines()) > 160  # without the options: too wide
    narrow = {**env, "COLUMNS": "160"}
    shown = _run([sys.executable, "-m", "dvc", *command[1:], "--no-pager"], work, narrow)
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 160, shown
    assert "…" not in shown, shown  # nothing cut to fit
    header = " ".join(lines[:3])
    for column in ("train.epochs", "fid", "fid_over_floor", "recall", "train_seconds"):
        assert re.search(rf"\b{re.escape(column)}\b", header), (column, shown)
    assert "generator.pt" not in shown and "pipeline/common.py" not in shown  # no hashes
    rows = [line for line in lines if "workspace" in line or "master" in line or "[" in line]
    assert len(rows) >= 3, shown
