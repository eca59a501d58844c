"""docs/team.md's "Team set-up", with real parts on loopback.

A throwaway PostgreSQL cluster (Debian's postgresql) backs `mlflow server` with a served
artifact root; two clones run the pipeline against it at the same time and both runs land
with their models. A local-directory DVC remote: `dvc push` from one clone, `dvc pull` into a
fresh `git clone` of it reproduces every out without retraining (`dvc repro`: up to date).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_repo import GIT, commit_all, dvc, env_for, make_clone, run

pytestmark = pytest.mark.slow

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as `nobody` then."""
    if os.geteuid() != 0:
        return args
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]


def _wait_for(url: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"mlflow server exited:\n{proc.stderr.read()}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster under a temp dir on 127.0.0.1:<free port>; yields its URI."""
    if not PG_BIN:
        pytest.skip("PostgreSQL missing: `.ci/run` installs Debian's postgresql")
    bin_dir = Path(PG_BIN[-1])
    root = Path(tempfile.mkdtemp(prefix="ganforge-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    data, port = root / "data", _free_port()
    subprocess.run(
        _as_postgres_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow",
                           "--auth=trust", "-E", "UTF8"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    subprocess.run(
        _as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                           "-l", str(root / "log"), "-w", "start"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow",
             "mlflow"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; the dev extra has psycopg2
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            _as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on the cluster with a served artifact root (docs/team.md's command)."""
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # creating the schema on a fresh database takes a while on a loaded machine
        _wait_for(f"http://127.0.0.1:{port}/health", proc, 600)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_two_clones_log_to_one_server_and_share_outs_through_a_dvc_remote(
    server: str, tmp_path: Path
) -> None:
    import mlflow

    env = env_for(server)
    one = make_clone(tmp_path / "one", env)
    two = make_clone(tmp_path / "two", env, seed=1)
    # Both at once against the same server (and a fresh database).
    procs = [
        subprocess.Popen(dvc("repro"), cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for work in (one, two)
    ]  # fmt: skip
    for proc in procs:
        out, _ = proc.communicate(timeout=1200)
        assert proc.returncode == 0, out

    client = mlflow.MlflowClient(tracking_uri=server, registry_uri=server)
    exp = client.get_experiment_by_name("ganforge")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["digits-dcgan-ns-s0", "digits-dcgan-ns-s1"]
    for r in runs:
        assert r.info.status == "FINISHED" and "eval.fid" in r.data.metrics
        assert {a.path for a in client.list_artifacts(r.info.run_id, "evaluate")}
    versions = client.search_model_versions("name = 'ganforge-generator'")
    assert len(versions) == 2
    mlflow.set_tracking_uri(server)
    mlflow.set_registry_uri(server)
    local = Path(mlflow.artifacts.download_artifacts(
        "models:/ganforge-generator@champion", dst_path=str(tmp_path / "champion")
    ))  # fmt: skip
    assert any(local.rglob("*.onnx"))

    # docs/team.md: the DVC remote, then commit and share the lock file through git.
    remote = tmp_path / "dvc-remote"
    run(dvc("remote", "add", "-d", "storage", str(remote)), one, env)
    run(dvc("push"), one, env)
    commit_all(one, env, "baseline with a remote")
    three = tmp_path / "three"
    run(["git", "clone", "-q", str(one), str(three)], tmp_path, env)
    run(dvc("pull"), three, env)
    for path in ("models/generator.pt", "models/generator.onnx", "models/classifier.pt",
                 "data/prepared/meta.json", "models/mlflow_run.json"):  # fmt: skip
        assert (three / path).exists(), path
    status = run(dvc("status"), three, env).stdout
    assert "up to date" in status, status
    again = run(dvc("repro"), three, env).stdout
    assert "Running stage" not in again, again
    assert run([*GIT, "status", "--porcelain"], three, env).stdout == ""
