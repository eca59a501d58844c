"""A fresh git + DVC clone of the project with tiny params, for the tests of runs and teams.

Not a test module: `make_clone` copies what a `git clone` of the repository holds (the tracked
pipeline files), shrinks params.yaml so that a whole `dvc repro` takes seconds, and commits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY: dict[str, Any] = {
    "prepare": {"image_size": 16},
    "classifier": {"epochs": 1, "width": 8, "feature_dim": 16},
    "train": {
        "ngf": 8,
        "ndf": 8,
        "batch_size": 32,
        "epochs": 1,
        "max_steps": 4,
        "checkpoint_every": 2,
        "log_every": 2,
        "num_sample_images": 16,
    },
    "evaluate": {
        "num_samples": 100,
        "batch_size": 50,
        "kid_subset_size": 50,
        "kid_subsets": 3,
        "is_splits": 2,
    },
    "export": {"parity_batches": [1, 2]},
}
# What a clone holds that the stages need (README, docs, tests and benchmarks are not needed).
TRACKED = ("dvc.yaml", "pipeline", "src", ".dvcignore", "plots_page", ".gitignore")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override`'s keys replaced, section by section."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def env_for(tracking_uri: str) -> dict[str, str]:
    """This interpreter's environment with the venv on PATH and a given tracking URI."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.pop("DVC_EXP_NAME", None)
    env.pop("MLFLOW_REGISTRY_URI", None)  # the pipeline keeps its registry in the tracking store
    return env


def run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command; with `check`, fail the test showing its output."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def dvc(*args: str) -> list[str]:
    """`dvc ...` through this interpreter (the venv's DVC)."""
    return [sys.executable, "-m", "dvc", *args]


def make_clone(
    work: Path, env: dict[str, str], *, tiny: dict[str, Any] = TINY, **overrides: Any
) -> Path:
    """A committed git + DVC copy of the pipeline at `work` with `tiny` (and `overrides`) params.

    `tiny` replaces TINY for a test that shrinks other sections, or fewer of them.
    """
    work.mkdir(parents=True)
    for name in TRACKED:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "node_modules")
            shutil.copytree(source, work / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, work / name)
    (work / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy2(ROOT / ".dvc" / name, work / ".dvc" / name)
    params = merge(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), tiny), overrides)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], work, env)
    run([*GIT, "add", "-A"], work, env)
    run([*GIT, "commit", "-qm", "tiny"], work, env)
    return work


def commit_all(work: Path, env: dict[str, str], message: str) -> None:
    """`git add -A && git commit` in `work`."""
    run([*GIT, "add", "-A"], work, env)
    run([*GIT, "commit", "-qm", message], work, env)
