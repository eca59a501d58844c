"""bench/quality.py runs the real stages end to end (tiny settings: its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import quality  # noqa: E402


def test_overrides_build_params_from_the_committed_ones() -> None:
    base = {"seed": 0, "train": {"model": "dcgan", "epochs": 60}}
    params = quality.build_params(base, {"train.model": "mlp", "seed": 2})
    assert params == {"seed": 2, "train": {"model": "mlp", "epochs": 60}}
    assert base["train"]["model"] == "dcgan"
    assert quality.parse_sets(["train.max_steps=20", "train.augment=[cutout]"]) == {
        "train.max_steps": 20,
        "train.augment": ["cutout"],
    }
    with pytest.raises(SystemExit, match="no section 'nope'"):
        quality.build_params(base, {"nope.x": 1})


def _resolved(name: str, sample_shape: tuple[int, ...], num_classes: int) -> Any:
    """Row `name`'s train config as the train stage resolves it on data of that shape."""
    from ganforge.recipe import DataFacts
    from pipeline.params import TrainRequest

    params = quality.build_params(yaml.safe_load((ROOT / "params.yaml").read_text()),
                                  quality.CONFIGS[name])  # fmt: skip
    request = TrainRequest(params["train"])
    return params, request.resolve(DataFacts(sample_shape, 1257, num_classes)).config


def test_every_row_changes_one_key_of_params_yaml() -> None:
    """What a user does: one key (the RGB folder also names its image size)."""
    for name, overrides in quality.CONFIGS.items():
        keys = set(overrides) - {"prepare.image_size"}
        assert len(keys) <= 1, f"{name} changes {sorted(overrides)}"


def test_digits_mlp_row_builds_the_papers_nets() -> None:
    """`train.model: mlp` alone gives Goodfellow et al.'s MNIST layer sizes on 32x32 digits,
    and no labels though the data have them: the paper's unconditional GAN."""
    import torch
    from torch import nn

    from ganforge.models import build_discriminator, build_generator
    from ganforge.models.mlp import Maxout
    from ganforge.training.trainer import make_spec

    labels = torch.arange(100) % 10
    _, config = _resolved("digits_mlp", (1, 32, 32), 10)
    spec = make_spec(config, (1, 32, 32), 10, (), labels)
    assert spec.arch == "mlp"
    assert spec.num_classes == 0 and not spec.class_prior and not spec.labelled
    g, d = build_generator(spec), build_discriminator(spec)
    g_linear = [(m.in_features, m.out_features) for m in g.modules() if isinstance(m, nn.Linear)]
    assert g_linear == [(100, 1200), (1200, 1200), (1200, 1024)]
    maxouts = [m for m in d.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (1024, 240, 5),
        (240, 240, 5),
    ]
    assert [m.p for m in d.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]


def test_toy_rows_build_the_ring_grid_nets() -> None:
    """`prepare.dataset: ring_2d` (or grid_2d) alone gives 3-hidden-layer nets of 128 units with
    LeakyReLU D units and R1 on (docs/results.md, "The ring/grid configuration")."""
    from torch import nn

    from ganforge.models import build_discriminator, build_generator
    from ganforge.training.trainer import make_spec

    for name in ("ring_2d", "grid_2d"):
        params, config = _resolved(name, (2,), 8)
        assert params["prepare"]["dataset"] == name
        assert config.r1_gamma > 0 and config.instance_noise == 0 and config.labels == "none"
        spec = make_spec(config, (2,))
        g, d = build_generator(spec), build_discriminator(spec)
        g_linear = [
            (m.in_features, m.out_features) for m in g.modules() if isinstance(m, nn.Linear)
        ]
        assert g_linear == [(2, 128), (128, 128), (128, 128), (128, 2)]
        assert sum(isinstance(m, nn.LeakyReLU) for m in d.modules()) == 3


def test_table_prints_parzen_classes_and_all_failed_rows(capsys: pytest.CaptureFixture) -> None:
    """The mlp row's Parzen log-likelihood and class count reach the table; a table whose rows
    all failed still prints (it raised on the empty column widths)."""
    quality.print_table([{"config": "c", "seed": 0, "parzen_ll": 123.4, "classes_covered": 10}])
    out = capsys.readouterr().out
    assert "Parzen" in out and " 123 " in out and " 10 " in out
    quality.print_table([{"config": "c", "seed": 0, "error": "train failed"}])
    assert "FAILED train failed" in capsys.readouterr().out


def _run_quality(
    out: Path, config: str, sets: tuple[str, ...], timeout: float
) -> subprocess.CompletedProcess[str]:
    """bench/quality.py on one config, seed 0, with `--set` overrides; rows JSON to `out`."""
    args = ["--configs", config, "--seeds", "0", "--json", str(out)]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "quality.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_quality_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    sets = ("train.max_steps=20", "prepare.num_points=1000", "evaluate.num_samples=500")
    proc = _run_quality(out, "gaussian_1d", sets, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["config", "seed", "FID"]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["config"] == "gaussian_1d" and row["steps"] == 20
    assert 0 <= row["jsd"] <= 0.7 and row["best_step"] == 20 and row["train_seconds"] > 0


def test_mnist_and_rgb_folder_rows_stage_their_data(tmp_path: Path) -> None:
    """Each row's hook writes what its prepare reads, under the workspace's prepare.root: the
    5 000 MNIST digits as torchvision's files, an unlabelled folder of 64 px RGB photo crops."""
    import torch
    from torchvision import datasets

    from ganforge.config import PrepareConfig
    from ganforge.data import load_split, prepare_dataset
    from ganforge.data.images import list_image_folder

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert quality.CONFIGS["mnist"] == {"prepare.dataset": "mnist"}
    assert quality.CONFIGS["rgb_folder_64"] == {
        "prepare.dataset": "image_folder",
        "prepare.image_size": 64,
    }
    mnist = quality.build_params(base, quality.CONFIGS["mnist"])
    quality.stage_data("mnist", mnist, tmp_path / "m")
    root = tmp_path / "m" / mnist["prepare"]["root"]
    assert len(datasets.MNIST(str(root), train=True)) == 4000
    assert len(datasets.MNIST(str(root), train=False)) == 1000

    rgb = quality.build_params(base, quality.CONFIGS["rgb_folder_64"])
    quality.stage_data("rgb_folder_64", rgb, tmp_path / "r")
    folder = tmp_path / "r" / rgb["prepare"]["root"]
    paths, labels, classes, problems = list_image_folder(folder)
    assert len(paths) == 2000 and classes == [] and problems == [] and (labels == -1).all()
    config = PrepareConfig(dataset="image_folder", root=str(folder), image_size=64, channels=3)
    meta = prepare_dataset(config, seed=0, out_dir=tmp_path / "prepared")
    assert meta["sample_shape"] == [3, 64, 64] and meta["num_classes"] == 0
    train = load_split(tmp_path / "prepared", "train").data
    assert (train[:, 0] != train[:, 1]).float().mean() > 0.5  # colour, not repeated grey
    assert len(torch.unique(train.reshape(len(train), -1), dim=0)) == len(train)  # no twins

    # rows without a hook stage nothing; a staged row never shares another's cache
    quality.stage_data("digits_dcgan", base, tmp_path / "d")
    assert not (tmp_path / "d").exists()
    same = quality.build_params(base, {"prepare.dataset": "mnist"})
    assert quality.upstream_key("mnist", same) != quality.upstream_key("other", same)
    outside = quality.build_params(base, {**quality.CONFIGS["mnist"], "prepare.root": "/data"})
    with pytest.raises(quality.BenchError, match="inside"):
        quality.stage_data("mnist", outside, tmp_path / "x")


def _history(path: Path, windows: list[tuple[int, float, float | None]], per_step: int) -> float:
    """A train_history.csv of log windows (steps, seconds, fid_val or None); total seconds."""
    lines, step = ["step,loss_d,images_per_s,fid_val"], 0
    for steps, seconds, fid in windows:
        step += steps
        lines.append(f"{step},0.5,{steps * per_step / seconds:.6g},{'' if fid is None else fid}")
    path.write_text("\n".join(lines) + "\n")
    return sum(seconds for _, seconds, _ in windows)


def test_fid_curve_recovers_wall_clock_seconds(tmp_path: Path) -> None:
    """Log windows of known length (the monitor's evaluations make some longer): the curve's
    seconds are the cumulative window lengths at the measured steps, images per step read
    from the report."""
    windows = [(10, 2.0, None), (10, 3.5, 40.0), (10, 2.5, None), (10, 6.0, 9.5), (5, 1.0, 7.0)]
    history = tmp_path / "train_history.csv"
    total = _history(history, windows, per_step=64)
    report = {"steps": 45, "session_seconds": total + 0.4, "train_seconds": total + 0.4}
    report["images_per_s"] = 45 * 64 / report["session_seconds"]
    curve = quality.fid_curve(history, report)
    assert curve["step"] == [20, 40, 45] and curve["fid_val"] == [40.0, 9.5, 7.0]
    assert curve["seconds"] == pytest.approx([5.5, 14.0, 15.0], abs=0.02)
    assert "images_per_s" in curve["seconds_source"]
    assert quality.first_below(curve, 9.6) == (curve["seconds"][1], 40)
    assert quality.first_below(curve, 7.0) is None

    # without throughput per window: the mean seconds per step
    history.write_text("step,fid_val\n10,\n20,3.0\n")
    curve = quality.fid_curve(history, {"steps": 20, "train_seconds": 8.0})
    assert curve["seconds"] == [8.0] and "mean seconds per step" in curve["seconds_source"]
    history.write_text("step,fid_val\n10,\n20,\n")
    assert quality.fid_curve(history, report) is None  # never measured


def test_baseline_rows_sit_beside_the_gan_rows(capsys: pytest.CaptureFixture) -> None:
    """The GMM-10 line of the same data (and seed) decides the seconds to beat it; the table
    shows the baselines and that column, and the MNIST curve is printed against seconds."""
    curve = {"step": [100, 200, 300], "seconds": [10.0, 21.0, 33.0], "fid_val": [9.0, 4.0, 1.0]}
    curve["seconds_source"] = "test"
    rows = [
        {"config": "mnist", "seed": 0, "dataset": "mnist", "data_key": "a", "fid": 1.0,
         "curve": curve},
        {"config": "mnist", "seed": 1, "dataset": "mnist", "data_key": "b", "fid": 2.0,
         "curve": dict(curve)},
        {"config": "mnist:gmm10", "seed": 0, "baseline": "gmm10", "dataset": "mnist",
         "data_key": "a", "fid": 3.1, "fid_val": 4.5, "train_seconds": 12.0},
        {"config": "mnist:gmm10", "seed": 1, "baseline": "gmm10", "dataset": "mnist",
         "data_key": "b", "fid": 3.3, "fid_val": 0.5, "train_seconds": 13.0},
    ]  # fmt: skip
    quality.compare_with_baselines(rows)
    assert (rows[0]["seconds_to_gmm10"], rows[0]["step_to_gmm10"]) == (21.0, 200)
    assert rows[1]["gmm10_fid_val"] == 0.5 and rows[1]["seconds_to_gmm10"] is None
    quality.print_table(rows)
    quality.print_curves(rows)
    out = capsys.readouterr().out
    assert "s<GMM10" in out.splitlines()[0] and "FID val" in out.splitlines()[0]
    gmm = [line for line in out.splitlines() if line.startswith("mnist:gmm10")]
    assert [line.split()[1] for line in gmm] == ["0", "1", "mean"]
    assert "first below after 21 s (step 200)" in out and "never below" in out


@pytest.mark.slow
def test_quality_bench_mnist_row_with_baselines(tmp_path: Path) -> None:
    """The mnist row end to end at tiny settings: staged digits, GAN row, GMM rows, curve."""
    out = tmp_path / "rows.json"
    sets = ("train.max_steps=20", "classifier.epochs=1", "evaluate.num_samples=500")
    proc = _run_quality(out, "mnist", sets, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["config"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"mnist", "mnist:gmm10", "mnist:gmm40"}
    gan = rows["mnist"]
    assert gan["dataset"] == "mnist" and gan["steps"] == 20 and gan["curve"]["step"][-1] == 20
    assert gan["gmm10_fid_val"] == rows["mnist:gmm10"]["fid_val"]
    for name in ("mnist:gmm10", "mnist:gmm40"):
        assert rows[name]["num_samples"] == 500 and rows[name]["fid"] > rows[name]["fid_floor"]
        assert rows[name]["classes_covered"] >= 1 and rows[name]["fid_val"] > 0
    assert "validation FID" in proc.stdout and "mnist:gmm40" in proc.stdout
