"""`dvc plots show` draws every chart of dvc.yaml offline, checked in real headless Chromium.

The page's scripts (vega, vega-lite, vega-embed) come from plots_page/ (npm, pinned by
package-lock.json) through the DVC html template named in .dvc/config; every request that
leaves the machine is refused by the browser, so a chart that needs a CDN stays blank.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from plots_helpers import need_browser, render_in_chromium, vega_plot_ids

from ganforge.lectures.files import (
    DENSITY_COLUMNS,
    MODE_COLUMNS,
    SATURATION_COLUMNS,
    VALUE_COLUMNS,
)
from ganforge.training.callbacks import HISTORY_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plots_page" / "template.html"
# The columns the stages write (HistoryCSV in training, evaluate's class histogram).
# The columns the train stage writes (fid_val is always there, empty where unscored).
HISTORY = [*HISTORY_COLUMNS, "fid_val"]
HISTOGRAM = ["class", "generated", "real"]


def test_committed_template_is_built_from_the_locked_packages(tmp_path: Path) -> None:
    """plots_page/template.html is exactly what build.js makes of the pinned packages."""
    page = ROOT / "plots_page"
    package = json.loads((page / "package.json").read_text())
    lock = json.loads((page / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
    if not (page / "node_modules").is_dir() or shutil.which("node") is None:
        pytest.skip("plots_page/node_modules missing: `npm ci --prefix plots_page` (.ci/run)")
    out = tmp_path / "template.html"
    subprocess.run(["node", str(page / "build.js"), str(out)], check=True, timeout=120)
    assert out.read_bytes() == TEMPLATE.read_bytes(), "rebuild and commit plots_page/template.html"
    assert "{plot_divs}" in out.read_text() and "cdn.jsdelivr" not in out.read_text()


def _write_csv(path: Path, header: Sequence[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_dvc_yaml_charts_have_real_axes() -> None:
    """No chart of dvc.yaml falls back to the row index; each names columns the stages write."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    columns = {
        "plots/train_history.csv": HISTORY,
        "plots/class_histogram.csv": HISTOGRAM,
        "plots/lectures/value.csv": VALUE_COLUMNS,
        "plots/lectures/modes.csv": MODE_COLUMNS,
        "plots/lectures/densities.csv": DENSITY_COLUMNS,
        "plots/lectures/saturation.csv": SATURATION_COLUMNS,
    }
    for stage in spec["stages"].values():  # a stage-level plot file gets DVC's index-x chart
        for entry in stage.get("plots", []):
            name = next(iter(entry)) if isinstance(entry, dict) else entry
            assert name.endswith(".png") or Path(name).suffix == "", name
    for entry in spec["plots"]:
        if not isinstance(entry, dict):
            assert (ROOT / entry).suffix in (".png", "") or entry.startswith("plots/")
            continue
        ((plot_id, plot),) = entry.items()
        assert plot.get("x"), f"plot {plot_id} has no x: DVC would use the row index"
        for file, fields in plot["y"].items():
            fields = [fields] if isinstance(fields, str) else fields
            for field in [*fields, plot["x"]]:
                assert field in columns[file], f"plot {plot_id}: {file} has no column {field}"


def test_plots_page_renders_every_chart_offline(tmp_path: Path) -> None:
    need_browser()
    work = tmp_path / "repo"
    (work / ".dvc").mkdir(parents=True)
    shutil.copy2(ROOT / ".dvc" / "config", work / ".dvc" / "config")
    (work / "plots_page").mkdir()
    shutil.copy2(TEMPLATE, work / "plots_page" / "template.html")
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for entry in spec["plots"]:  # the chart templates dvc.yaml names by path
        for plot in entry.values() if isinstance(entry, dict) else ():
            if "/" in plot.get("template", ""):
                shutil.copy2(ROOT / plot["template"], work / plot["template"])
    # The charts only: stages are not needed to draw files that are already there.
    (work / "dvc.yaml").write_text(yaml.safe_dump({"plots": spec["plots"]}, sort_keys=False))
    # As the train stage writes it: fid_val only at the steps it was scored (every 20 here),
    # empty in the other rows.
    fid = {20: 7.5, 40: 4.25, 60: 3.0, 80: 3.5, 95: 3.25}
    rows = [
        [s, 1.3 - s / 100, 0.7 + s / 200, 0.6, 0.4, 1.0, 2.0, 500 + s, 0.9, fid.get(s, "")]
        for s in [*range(5, 95, 5), 95]
    ]
    _write_csv(work / "plots/train_history.csv", HISTORY, rows)
    # counts: 1 000 generated, 360 real; shares on one scale (0.1 each for the real ones)
    generated = [50, 150, *[100] * 8]
    _write_csv(
        work / "plots/class_histogram.csv",
        HISTOGRAM,
        [[str(k), generated[k], 36] for k in range(10)],
    )
    _write_lecture_csvs(work / "plots" / "lectures")
    # The grids the train stage keeps (first, three middle, best, last: six at most), at the
    # size of the default run's (8 x 8 images of 32 px), noisy so that PNG cannot shrink them.
    rng = np.random.default_rng(0)
    grids = [f"plots/samples/epoch_{e:04d}.png" for e in (1, 60, 97, 120, 180, 240)]
    lectures = [f"plots/lectures/figures/{name}" for name in ("figure1.png", "saturation.png")]
    for png in ("plots/eval_samples.png", *grids, *lectures):
        (work / png).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (274, 274), dtype=np.uint8)).save(work / png)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for args in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q", "--force"]):
        subprocess.run(args, cwd=work, env=env, check=True, capture_output=True, timeout=120)
    shutil.copy2(ROOT / ".dvc" / "config", work / ".dvc" / "config")  # dvc init rewrote it
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "-o", "page"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout + shown.stderr
    html = (work / "page" / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed" in html

    page_bytes = sum(f.stat().st_size for f in (work / "page").rglob("*") if f.is_file())
    assert page_bytes < 3 * 2**20, f"the plots page is {page_bytes / 2**20:.1f} MiB"

    ids = vega_plot_ids(spec)
    assert len(ids) >= 5
    shot = Path(os.environ.get("GANFORGE_SHOTS", tmp_path)) / "plots_page.png"
    counts, drawn = render_in_chromium(work / "page" / "index.html", ids, shot)
    assert all(n >= 1 for n in counts.values()), counts
    # The validation curve: a point at each scored step and nowhere else (no zeros between),
    # so its lowest point is the best score logged.
    points = sorted(tuple(p) for p in drawn["fid_curve"])
    assert points == sorted(fid.items()), points
    assert min(v for _, v in points) == min(fid.values())
    # Generated and real shares on one chart, one scale: each series sums to 1.
    bars = drawn["class_histogram"]
    for series in ("workspace: generated", "workspace: real"):
        shares = {c: v for c, s, v in bars if s == series}
        assert len(shares) == 10 and abs(sum(shares.values()) - 1.0) < 1e-9, (series, shares)
    generated_shares = {c: v for c, s, v in bars if s.endswith("generated")}
    assert generated_shares["1"] == pytest.approx(0.15) and generated_shares["0"] == 0.05


def _write_lecture_csvs(folder: Path) -> None:
    """plots/lectures as a 1-D run writes it: V nearing −log 4, no modes (header only), the last
    snapshot's densities, and the saturation rows of two snapshots."""
    log4 = -float(np.log(4.0))
    steps = [0, 10, 40, 160, 640]
    jsd = [0.69, 0.4, 0.1, 0.02, 0.004]
    _write_csv(
        folder / "value.csv",
        VALUE_COLUMNS,
        [[s, log4 + 2 * j - 0.1, log4 + 2 * j, j, log4] for s, j in zip(steps, jsd, strict=True)],
    )
    _write_csv(folder / "modes.csv", MODE_COLUMNS, [])
    xs = np.linspace(2.0, 6.0, 41)
    p = np.exp(-0.5 * ((xs - 4.0) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
    _write_csv(
        folder / "densities.csv",
        DENSITY_COLUMNS,
        [[x, v, v, 0.5, 0.5] for x, v in zip(xs, p, strict=True)],
    )
    d = np.linspace(0.05, 0.95, 10)
    _write_csv(
        folder / "saturation.csv",
        SATURATION_COLUMNS,
        [[s, v, v, 1 - v, 0.1 * v, 0.1 * (1 - v)] for s in (0, 640) for v in d],
    )
