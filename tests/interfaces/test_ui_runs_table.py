"""`ganforge ui`: MLflow's UI opens on the runs table, model-training mode, sorted by FID.

Three finished runs are written to a fresh SQLite store; `ganforge ui` serves it on loopback
and prints a URL; headless Chromium opens that URL in a fresh profile (where MLflow 3 would
default to its GenAI mode) and must find the runs table with each run's FID in its row, the
best run first, the headline columns and the changed param shown, and no GenAI overview.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serve_helpers import ROOT, free_port, stop

pytestmark = pytest.mark.slow
CHROMIUM = Path(os.environ.get("GANFORGE_CHROMIUM") or shutil.which("chromium") or "")
STARTUP_S = 120
# run name -> (eval.fid, train.lr_g)
RUNS = {"lr-slow": (3.25, "0.0001"), "lr-best": (0.61, "0.0004"), "lr-fast": (1.75, "0.0008")}


def _needs() -> str | None:
    if not CHROMIUM.is_file():
        return "no chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright-python is not installed"
    return None


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo-like folder: params.yaml and mlflow.db holding three scored runs."""
    import mlflow

    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("ganforge")
    for name, (fid, lr) in RUNS.items():
        with mlflow.start_run(run_name=name):
            mlflow.log_params({"train.lr_g": lr, "train.ngf": "32", "seed": "0"})
            mlflow.log_metrics({
                "eval.fid": fid, "eval.fid_over_floor": fid / 0.16, "eval.precision": 0.8,
                "eval.recall": 0.85, "eval.classes_covered": 10, "final_train_seconds": 140.0,
                "loss_d": 1.2,
            })  # fmt: skip
    mlflow.set_tracking_uri(None)
    return tmp_path


def test_changed_params_lists_what_differs() -> None:
    from types import SimpleNamespace

    from pipeline.runs_table import changed_params

    def run(**params):
        return SimpleNamespace(data=SimpleNamespace(params=params))

    runs = [run(**{"seed": "0", "train.lr_g": "1", "evaluate.n": "5"}),
            run(**{"seed": "1", "train.lr_g": "2", "evaluate.n": "5"})]  # fmt: skip
    assert changed_params(runs) == ["train.lr_g", "seed"]
    assert changed_params(runs[:1]) == []


@pytest.mark.skipif(_needs() is not None, reason=_needs() or "")
def test_ui_opens_the_runs_table_sorted_by_fid(store: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    log = store / "ui.log"
    cmd = [sys.executable, "-m", "ganforge.cli", "ui", "--no-browser", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=store, env={**env, "COLUMNS": "200"}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline, url = time.monotonic() + STARTUP_S, None
        while url is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            found = re.search(r"(http://127\.0\.0\.1:\d+/#/experiments/\S+)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.3)
        assert url, f"no URL printed within {STARTUP_S} s: {log.read_text()[-3000:]}"
        assert "sorted by FID" in log.read_text()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1920, "height": 900})
                page.goto(url, timeout=60_000)
                # every run's FID shows in the table once it has loaded
                shown = [f"{fid}" for fid, _ in RUNS.values()]
                condition = " && ".join(f"document.body.innerText.includes('{t}')" for t in shown)
                page.wait_for_function(
                    f"document.body.innerText.includes('lr-best') && {condition}",
                    timeout=90_000,
                )
                page.wait_for_timeout(1500)  # let the grid settle before reading it
                shot = Path(os.environ.get("GANFORGE_SHOTS", store)) / "mlflow_ui.png"
                page.screenshot(path=str(shot))
                text = page.inner_text("body")
                # ag-grid draws a row in parts (pinned name column, scrolled columns): one
                # text per aria-rowindex, parts joined in page order
                parts = page.eval_on_selector_all(
                    "[role=row][aria-rowindex]",
                    "rows => rows.map(r => [r.getAttribute('aria-rowindex'),"
                    " r.innerText.replace(/\\s+/g, ' ')])",
                )
            finally:
                browser.close()
    finally:
        stop(proc)
    # the runs table, in model-training mode: no GenAI overview of traces
    for genai in ("Detect Issues", "Token usage", "Overview", "Sessions", "Judges"):
        assert genai not in text, f"GenAI page element {genai!r} on the page"
    assert "Runs" in text and "Sort: eval.fid" in text
    # headline columns and the changed param are visible
    for column in ("eval.fid", "eval.fid_over_floor", "eval.precision", "eval.recall",
                   "eval.classes_covered", "final_train_seconds", "train.lr_g"):  # fmt: skip
        assert column in text, f"column {column} not shown"
    assert "train.ngf" not in text  # the same in every run: not a column of the view
    # a row per run, each with its own FID; the best (lowest) first
    joined: dict[int, str] = {}
    for index, part in parts:
        joined[int(index)] = f"{joined.get(int(index), '')} {part}"
    rows = [joined[i] for i in sorted(joined)]
    names = [name for row in rows for name in RUNS if name in row]
    assert names == sorted(RUNS, key=lambda n: RUNS[n][0]), rows
    for name, (fid, lr) in RUNS.items():
        (row,) = [r for r in rows if name in r]
        assert str(fid) in row and lr in row, row


def test_runs_table_fits_120_columns_best_first_champion_marked(store: Path) -> None:
    import mlflow
    from typer.testing import CliRunner

    from ganforge.cli import app

    uri = f"sqlite:///{store / 'mlflow.db'}"
    # the registry too: MlflowClient takes a registry URI an earlier test set in this process
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("ganforge")
    by_name = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    client.create_registered_model("ganforge-generator")
    source = store / "model"
    source.mkdir()
    version = client.create_model_version(
        "ganforge-generator", str(source), run_id=by_name["lr-fast"].info.run_id
    )
    client.set_registered_model_alias("ganforge-generator", "champion", version.version)
    for width in (200, 120):
        result = CliRunner().invoke(app, ["runs"], terminal_width=width, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert max(len(line) for line in lines) <= 120, result.output
    rows = [line for line in lines if any(name in line for name in RUNS)]
    assert [next(n for n in RUNS if n in row) for row in rows] == ["lr-best", "lr-fast", "lr-slow"]
    (champion,) = [row for row in rows if "★" in row]
    assert "lr-fast" in champion and "1.750" in champion and "0.0008" in champion
    assert "lr_g" in result.output and "ngf" not in result.output
    assert "0.610" in rows[0] and "3.8" in rows[0]  # FID and FID/floor of the best run
