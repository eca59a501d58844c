"""Does a refactor change a result? Train one fully explicit configuration at two commits.

For each commit (the base and the working tree), this script exports the tree into a temporary
folder, writes a params.yaml with every train key explicit (the digits default as the recipe
resolves it today), runs the real `prepare` and `train` stages there, and hashes the tensors of
the saved generator file: G, its EMA copy and D, each state dict in key order. Equal hashes mean
the two commits train to the same weights for the same seed (issue #21: a refactor must not
change a result).

    python bench/same_weights.py --base c09f6b8 [--steps 60] [--seed 0]

Key names that changed between commits are written in each commit's own spelling: the label
choice (`train.labels: latent` today, `latent_class: true` + `conditional: false` before) and
the budget (`max_steps`, which both spellings take). The script is a check to run by hand
around a refactor, not a test: it trains twice.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from quality import BenchError
from quality import _stage as run_stage

ROOT = Path(__file__).resolve().parents[1]

# The digits default with every recipe key explicit (ganforge.recipe's `dcgan` row as auto
# resolves it for the digits, latent class on). `labels` is spelled per commit below.
EXPLICIT_TRAIN: dict[str, Any] = {
    "model": "dcgan",
    "d_conditioning": "projection",
    "nz": 100,
    "ngf": 32,
    "ndf": 32,
    "loss": "non_saturating",
    "d_steps": 1,
    "optimizer": "adam",
    "lr_g": 0.0004,
    "lr_d": 0.0004,
    "beta1": 0.5,
    "beta2": 0.999,
    "batch_size": 128,
    "label_smoothing": 0.0,
    "instance_noise": 0.0,
    "ema_decay": 0.995,
    "augment": ["translation", "cutout"],
    "r1_gamma": 0.1,
    "r1_every": 8,
    "mode_seeking": 0.2,
    "d_norm": "batch",
    "mbstd_group": 0,
    "pack": 1,
    "g_upsample": "transpose",
    "device": "cpu",
    "amp": "off",
    "channels_last": "auto",
    "compile": False,
    "log_every": 10,
    "fid_every": 0,  # no validation monitor: the kept G is the last one, no classifier needed
    "keep": "last",
}


def export_tree(rev: str | None, dest: Path) -> None:
    """The commit `rev` (or, with None, the working tree's tracked files) copied to `dest`."""
    if rev is None:
        files = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
        ).stdout.split(b"\0")
        for name in filter(None, files):
            src = ROOT / name.decode()
            if src.is_file():
                (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name.decode())
        return
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryFile() as tmp:
        tmp.write(archive)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(dest, filter="data")


def write_params(tree: Path, steps: int, seed: int) -> None:
    """The tree's own params.yaml with the explicit train block in that tree's spelling."""
    params = yaml.safe_load((tree / "params.yaml").read_text())
    train = params["train"]
    train.update(EXPLICIT_TRAIN)
    train["max_steps"] = steps
    if "labels" in train:  # today's spelling
        train["labels"] = "latent"
    else:  # before the label keys became one
        train["conditional"] = False
        train["latent_class"] = True
    for key in ("mlp_layers", "maxout_pieces", "dropout", "input_dropout"):
        if train.get(key) == "auto":
            train.pop(key)  # mlp-only keys: unused by dcgan, their defaults are fine
    params["seed"] = seed
    (tree / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def train_in(tree: Path) -> None:
    """Run prepare and train in `tree`, logging to a throw-away MLflow store."""
    env = dict(
        os.environ,
        PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}",
        MLFLOW_TRACKING_URI=f"sqlite:///{tree / 'mlflow.db'}",
    )
    for stage in ("prepare", "train"):
        try:
            run_stage(stage, tree, env)  # bench/quality.py's: one stage in a subprocess
        except BenchError as err:
            raise SystemExit(f"{tree.name}: {err}") from None


def weights_hash(path: Path) -> dict[str, str]:
    """sha256 of each saved network's tensors (name and bytes, in key order)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    hashes = {}
    for part in ("generator", "generator_ema", "discriminator"):
        state = blob.get(part)
        if not state:
            continue
        digest = hashlib.sha256()
        for key in sorted(state):
            digest.update(key.encode())
            digest.update(state[key].contiguous().numpy().tobytes())
        hashes[part] = digest.hexdigest()
    return hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit before the refactor")
    parser.add_argument("--steps", type=int, default=60, help="generator steps of each run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="same-weights-") as tmp:
        for label, rev in (("base " + args.base, args.base), ("working tree", None)):
            tree = Path(tmp) / ("base" if rev else "head")
            tree.mkdir()
            export_tree(rev, tree)
            write_params(tree, args.steps, args.seed)
            train_in(tree)
            results[label] = weights_hash(tree / "models" / "generator.pt")
    (base_label, base), (head_label, head) = results.items()
    width = max(len(base_label), len(head_label))
    for part in base:
        print(f"{part}:")
        print(f"  {base_label:<{width}}  {base[part]}")
        print(f"  {head_label:<{width}}  {head.get(part, '(missing)')}")
    same = base == head
    print(f"same weights after {args.steps} steps (seed {args.seed}): {'yes' if same else 'NO'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
