"""Quality of each documented configuration, trained by the real pipeline stages, over seeds.

For every configuration in `CONFIGS` and every seed, builds a params.yaml from the committed one
plus the configuration's overrides (and `--set`), then runs `python -m pipeline.prepare`,
`classifier`, `train` and `evaluate` in a temporary copy of the repository, with MLflow pointed
at a temporary SQLite file. Prepared data and the domain classifier are reused between
configurations that share the seed and the `prepare` / `classifier` sections.

    python bench/quality.py [--configs digits_dcgan ring_2d] [--seeds 0 1 2]
                            [--set train.epochs=10 ...] [--json out.json] [--keep DIR]
                            [--no-baselines]

A row may stage its data into its workspace before `prepare` (`STAGE_DATA`): `mnist` writes the
5 000 real MNIST digits of bench/mnist_5k.py, `rgb_folder_64` the photo crops of
bench/sample_photos.py, both under params.yaml's `prepare.root`.

Prints one table: FID and FID / real-data floor (classifier features, generated vs test), the
validation FID (the train stage's monitor: `train.fid_samples` samples vs the val split; of the
kept G), precision, recall, the min and max ratio of a class's share among the samples to its
share in the data, the fraction of copies (closer to a training image than 5 % of test images
are), modes covered and high-quality fraction (toy data), JSD (1-D), the best step kept, the
training seconds and the seconds until the validation FID first went below the GMM-10 line.
Beside the GAN rows of each image data set (and seed), the Gaussian-mixture baselines of
bench/baselines.py (`<dataset>:gmm10`, `<dataset>:gmm40`) scored by the same evaluator; their
"train s" is the fit. Then, for the digits and MNIST rows, the validation-FID curve against
training seconds. `--json` writes the rows (one per configuration and seed, baselines and
curves included) for the README. It is a benchmark, not a test: it trains every model to its
configured length.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

# One row per configuration: the params.yaml keys it changes (dotted) over the committed
# params.yaml, one key each: `auto` derives the rest of the recipe from the data and the model
# (ganforge.recipe), so each row is what a user gets by changing that one key.
CONFIGS: dict[str, dict[str, Any]] = {
    # the default: DCGAN with the latent class (D reads the digit labels, G draws its class)
    "digits_dcgan": {},
    # the label exposed: a cGAN (Mirza & Osindero 2014)
    "digits_conditional": {"train.labels": "conditional"},
    # no labels at all: Radford et al.'s unconditional DCGAN
    "digits_label_free": {"train.labels": "none"},
    # the paper's MLP nets (Goodfellow et al. 2014): the recipe mlp_images
    "digits_mlp": {"train.model": "mlp"},
    # the mode-collapse benchmarks and the 1-D theory example: the recipes for points
    "ring_2d": {"prepare.dataset": "ring_2d"},
    "grid_2d": {"prepare.dataset": "grid_2d"},
    "gaussian_1d": {"prepare.dataset": "gaussian_1d"},
    # 5 000 real MNIST digits (bench/mnist_5k.py, staged into the workspace's data/raw);
    # prepare brings them to params.yaml's image size
    "mnist": {"prepare.dataset": "mnist"},
    # an unlabelled RGB folder: 2 000 64x64 crops of scikit-learn's photos (bench/sample_photos.py)
    "rgb_folder_64": {"prepare.dataset": "image_folder", "prepare.image_size": 64},
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
    ("FID val", "fid_val", "{:.2f}"),
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
    ("lect %", "lectures_share", "{:.1%}"),
    ("s<GMM10", "seconds_to_gmm10", "{:.0f}"),
)
# eval.json figures copied into a row (a GAN's or a baseline's)
EVAL_KEYS = (
    "fid", "fid_floor", "fid_over_floor", "precision", "recall", "precision_real",
    "recall_real", "conditional_accuracy", "class_share_min", "class_share_max",
    "classes_covered", "copy_fraction", "high_quality_fraction", "modes_covered", "num_modes",
    "jsd", "is_mean", "is_real_mean", "parzen_ll", "parzen_ll_se", "parzen_sigma",
)  # fmt: skip
# Data sets whose validation-FID curves are printed (against the GMM-10 line)
CURVE_DATASETS = ("digits", "mnist")
BASELINES = ROOT / "bench" / "baselines.py"


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


def stage_mnist(root: Path) -> None:
    """The 5 000 real MNIST digits as torchvision's IDX files under `root` (4 000 / 1 000)."""
    from mnist_5k import write_mnist_5k

    write_mnist_5k(root)


def stage_photo_folder(root: Path) -> None:
    """2 000 random 64x64 RGB crops (with flips) of scikit-learn's photos, as the folder `root`."""
    from sample_photos import write_photo_crops

    write_photo_crops(root)


# Data a row writes into its workspace's `prepare.root` before `prepare` runs.
STAGE_DATA: dict[str, Callable[[Path], None]] = {
    "mnist": stage_mnist,
    "rgb_folder_64": stage_photo_folder,
}


def stage_data(name: str, params: dict[str, Any], workspace: Path) -> None:
    """Run row `name`'s data hook, if any, into `workspace` / prepare.root."""
    hook = STAGE_DATA.get(name)
    if hook is None:
        return
    root = Path(params["prepare"]["root"])
    if root.is_absolute() or ".." in root.parts:
        raise BenchError(
            f"{name}: prepare.root = {root}: the row stages its data into its workspace, so "
            "prepare.root must be a path inside it (params.yaml's data/raw)"
        )
    try:
        hook(workspace / root)
    except (OSError, ValueError, SystemExit) as err:
        raise BenchError(f"{name}: staging its data: {err}") from None


def upstream_key(name: str, params: dict[str, Any]) -> str:
    """What prepared data and the classifier depend on: seed, prepare, classifier sections and
    the row's data hook; rows with equal keys share them."""
    upstream = {k: params.get(k) for k in ("seed", "prepare", "classifier")}
    if name in STAGE_DATA:
        upstream["stage_data"] = STAGE_DATA[name].__name__
    return hashlib.sha256(json.dumps(upstream, sort_keys=True).encode()).hexdigest()[:16]


def workspace_of(work: Path, name: str, params: dict[str, Any]) -> Path:
    return work / f"{name}-seed{params.get('seed')}"


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
    workspace = workspace_of(work, name, params)
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
    key = upstream_key(name, params)
    seconds: dict[str, float] = {}
    if (cache / key).is_dir():
        for item in CACHED:
            _copy_in(cache / key / item, workspace / item)
    else:
        stage_data(name, params, workspace)
        for stage in ("prepare", "classifier"):
            seconds[stage] = _stage(stage, workspace, env)
        for item in CACHED:
            _copy_in(workspace / item, cache / key / item)
    for stage in ("train", "evaluate"):
        seconds[stage] = _stage(stage, workspace, env)
    # reports/ hold every figure; metrics/ only the headline ones DVC diffs.
    train = json.loads((workspace / "reports/train.json").read_text())
    ev = json.loads((workspace / "reports/eval.json").read_text())
    row: dict[str, Any] = {"config": name, "seed": seed, "dataset": ev.get("dataset")}
    row.update({k: ev[k] for k in EVAL_KEYS if k in ev})
    if "modes_covered" in ev:
        row["modes"] = f"{ev['modes_covered']}/{ev['num_modes']}"
    for k in ("train_seconds", "steps", "best_step", "kept", "quality_measure"):
        row[k] = train.get(k)
    row["fid_val"] = train.get("best_fid_val")  # the kept G's, with keep: best
    row["warnings"] = train.get("warnings", [])
    row["stage_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    # the lectures' snapshots' share of the train stage's wall time (issue #22: < 3 % on the
    # digits, < 10 % on the toys), drawing at the end included
    lectures = train.get("lectures_seconds")
    row["lectures_share"] = lectures / seconds["train"] if lectures is not None else None
    row["data_key"] = key
    curve = fid_curve(workspace / "plots/train_history.csv", train)
    if curve is not None:
        row["curve"] = curve
    return row


def fid_curve(history: Path, report: dict[str, Any]) -> dict[str, Any] | None:
    """The validation-FID curve of a train run: steps where fid_val was measured, its values,
    and the training seconds at each (None without a fid_val column or value).

    The train stage records no wall time per logged step, so the seconds are derived: each
    history row's images_per_s is measured over its log window (the steps since the previous
    log plus the monitor, logging and checkpoints run after that log), so a window lasted
    steps x images per step / images_per_s, with images per step = reports/train.json's
    images_per_s x session_seconds / steps trained. The cumulative sum reaches each step when
    its fid_val measurement starts. Without images_per_s, seconds = step x train_seconds / steps.
    """
    if not history.is_file():
        return None
    with history.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def number(row: dict[str, str], key: str) -> float:
        try:
            return float(row.get(key) or "nan")
        except ValueError:
            return float("nan")

    steps = [int(number(r, "step")) for r in rows]
    fid = [number(r, "fid_val") for r in rows]
    if not any(v == v for v in fid):
        return None
    trained = (report.get("steps") or 0) - (report.get("resumed_from_step") or 0)
    ips = [number(r, "images_per_s") for r in rows]
    per_step = None
    if trained > 0 and report.get("images_per_s") and report.get("session_seconds"):
        per_step = report["images_per_s"] * report["session_seconds"] / trained
    seconds: list[float] = []
    if per_step and rows and all(v > 0 for v in ips) and not report.get("resumed_from_step"):
        total, previous = 0.0, 0
        for step, rate in zip(steps, ips, strict=True):
            total += (step - previous) * per_step / rate
            seconds.append(total)
            previous = step
        source = "history images_per_s per log window x images per step (derived)"
    elif report.get("steps") and report.get("train_seconds"):
        seconds = [s * report["train_seconds"] / report["steps"] for s in steps]
        source = "step x mean seconds per step (derived)"
    else:
        return None
    keep = [i for i, v in enumerate(fid) if v == v]
    return {
        "step": [steps[i] for i in keep],
        "seconds": [round(seconds[i], 2) for i in keep],
        "fid_val": [fid[i] for i in keep],
        "seconds_source": source,
        "logged_seconds": round(seconds[-1], 2) if seconds else None,
        "train_seconds": report.get("train_seconds"),
    }


def first_below(curve: dict[str, Any], line: float) -> tuple[float, int] | None:
    """(seconds, step) where the curve's fid_val first went below `line`, or None."""
    for seconds, step, value in zip(curve["seconds"], curve["step"], curve["fid_val"], strict=True):
        if value < line:
            return seconds, step
    return None


def baseline_rows(
    name: str,
    params: dict[str, Any],
    work: Path,
    cache: Path,
    env: dict[str, str],
    components: tuple[int, ...] = (10, 40),
) -> list[dict[str, Any]]:
    """The GMM baselines (bench/baselines.py) of row `name`'s prepared data and classifier, run in
    its workspace; cached per data key, evaluate section and train.fid_samples. [] for points."""
    workspace = workspace_of(work, name, params)
    meta_file = workspace / "data/prepared/meta.json"
    if not meta_file.is_file() or json.loads(meta_file.read_text()).get("kind") != "images":
        return []
    key = upstream_key(name, params)
    which = {
        "evaluate": params.get("evaluate"),
        "fid_samples": params["train"].get("fid_samples"),
        "components": list(components),
    }
    digest = hashlib.sha256(json.dumps(which, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache / key / f"baselines-{digest}.json"
    if not cached.is_file():
        out = workspace / "reports" / "baselines.json"
        env = dict(env, PYTHONPATH=f"{workspace / 'src'}{os.pathsep}{workspace}")
        args = [sys.executable, str(BASELINES), "--json", str(out), "--components"]
        proc = subprocess.run(
            args + [str(c) for c in components],
            cwd=workspace, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
            raise BenchError(f"baselines: {lines[-1] if lines else f'exit {proc.returncode}'}")
        _copy_in(out, cached)
    rows = []
    for b in json.loads(cached.read_text()):
        row: dict[str, Any] = {
            "config": f"{b.get('dataset')}:{b['baseline']}",
            "seed": params.get("seed"),
            "baseline": b["baseline"],
            "dataset": b.get("dataset"),
            "data_key": key,
            "data_of": name,
        }
        row.update({k: b[k] for k in EVAL_KEYS if k in b})
        row["fid_val"] = b.get("fid_val")
        row["train_seconds"] = b.get("fit_seconds")
        row.update({k: b[k] for k in ("components", "pca_dim", "num_samples", "fid_val_samples")
                    if k in b})  # fmt: skip
        rows.append(row)
    return rows


def compare_with_baselines(rows: list[dict[str, Any]]) -> None:
    """Give every GAN row with a curve its data's GMM-10 validation-FID line and the seconds
    (and step) at which its curve first went below it."""
    lines = {
        r["data_key"]: r["fid_val"]
        for r in rows
        if r.get("baseline") == "gmm10" and r.get("fid_val") is not None
    }
    for r in rows:
        if r.get("baseline") or "curve" not in r or r.get("data_key") not in lines:
            continue
        r["gmm10_fid_val"] = lines[r["data_key"]]
        hit = first_below(r["curve"], r["gmm10_fid_val"])
        r["seconds_to_gmm10"], r["step_to_gmm10"] = hit if hit else (None, None)


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


def print_curves(rows: list[dict[str, Any]], per_line: int = 10) -> None:
    """The digits and MNIST rows' validation-FID curves against training seconds, each with its
    data's GMM-10 line and when it first went below it."""
    chosen = [r for r in rows if r.get("curve") and r.get("dataset") in CURVE_DATASETS]
    if not chosen:
        return
    print(
        "\nvalidation FID (train.fid_samples samples vs the val split) against training seconds "
        f"({chosen[0]['curve']['seconds_source']})"
    )
    for r in chosen:
        curve = r["curve"]
        if r.get("gmm10_fid_val") is None:
            verdict = "no GMM-10 line"
        elif r.get("seconds_to_gmm10") is None:
            verdict = f"GMM-10 line {r['gmm10_fid_val']:.3g}: never below"
        else:
            verdict = (
                f"GMM-10 line {r['gmm10_fid_val']:.3g}: first below after "
                f"{r['seconds_to_gmm10']:.0f} s (step {r['step_to_gmm10']})"
            )
        print(f"{r['config']} seed {r['seed']}: {verdict}")
        points = list(zip(curve["seconds"], curve["fid_val"], strict=True))
        for i in range(0, len(points), per_line):
            part = points[i : i + per_line]
            print("  s      " + "".join(f"{s:>9.0f}" for s, _ in part))
            print("  fid_val" + "".join(f"{v:>9.3g}" for _, v in part))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--set", dest="sets", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
        help="override params.yaml keys for every configuration (e.g. train.epochs=5 seed=1)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--keep", type=Path, help="keep the workspaces in this folder")
    parser.add_argument(
        "--no-baselines", dest="baselines", action="store_false",
        help="skip the GMM baselines of the image data sets (bench/baselines.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    sets = parse_sets(args.sets)

    tmp = tempfile.TemporaryDirectory(prefix="ganforge-quality-")
    work = args.keep.resolve() if args.keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")
    rows = []
    done: set[str] = set()  # data keys whose baselines are in `rows`
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
                key = upstream_key(name, params)
                if args.baselines and key not in done:
                    done.add(key)
                    start = time.perf_counter()
                    try:
                        for b in baseline_rows(name, params, work, work / "cache", env):
                            if any(r["config"] == b["config"] and r["seed"] == seed for r in rows):
                                b["config"] = f"{name}:{b['baseline']}"  # another data set's name
                            rows.append(b)
                    except BenchError as err:
                        rows.append({"config": f"{name}:gmm", "seed": seed, "error": str(err)})
                    took = time.perf_counter() - start
                    print(f"# {name} seed {seed} baselines: {took:.1f} s", file=sys.stderr)
    finally:
        tmp.cleanup()
    compare_with_baselines(rows)
    print_table(rows)
    print_curves(rows)
    if args.json:
        args.json.write_text(json.dumps({"overrides": sets, "rows": rows}, indent=2) + "\n")
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
