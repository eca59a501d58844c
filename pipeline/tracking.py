"""MLflow for the stages: the tracking store, the run of the current generator and its life
cycle (FINISHED, FAILED, KILLED), run names and params; a broken store is one line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ganforge.io import write_json
from pipeline.full_disk import no_space
from pipeline.paths import OPEN_RUN_FILE, RUN_FILE, repo_root
from pipeline.stage import StageError, require_upstream, sigterm_raises

# The experiment tag MLflow 3's UI reads to open an experiment on its runs table (classic
# training) rather than on the GenAI overview of traces.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# MLflow retries an HTTP request for minutes by default (7 retries, backoff 2, timeout 120 s):
# a server that goes away mid-stage should stop the stage in seconds, not minutes. The user's
# own values win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
PROBE_SECONDS = 5.0
# What SQLite says when the disk under its database is full.
SQLITE_FULL = "database or disk is full"


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` when set (a team's server), else the repo's own SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def git_commit() -> str | None:
    """The checked-out commit, when this is a git repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # It logs a database error with its traceback before raising it; the stage reports it
    # in one line (tracking_error).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def read_run_file() -> str:
    """The MLflow run id that `train` recorded in RUN_FILE; a StageError naming the fix if bad."""
    require_upstream(RUN_FILE)
    fix = f"restore it with `dvc checkout {RUN_FILE}` or rerun `dvc repro train`"
    try:
        data = json.loads(RUN_FILE.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StageError(f"{RUN_FILE} is not readable JSON ({err}): {fix}.") from None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    if not isinstance(run_id, str) or not run_id:
        shown = json.dumps(data)[:60]
        raise StageError(f"{RUN_FILE} holds no run_id string (it holds {shown}): {fix}.")
    return run_id


def _is_tracking_error(err: BaseException) -> bool:
    """True for errors of the tracking store itself (MLflow, SQLAlchemy, sqlite)."""
    module = type(err).__module__
    return module.startswith(("mlflow", "sqlalchemy", "sqlite3", "alembic"))


def tracking_error(err: BaseException, stage: str | None = None) -> StageError:
    """One line naming the tracking store, what it said and how to get going again (for a
    full disk under a SQLite store, the line every stage gives for a full disk)."""
    full = _store_full(err, stage)
    if full is not None:
        return full
    uri = tracking_uri()
    root: BaseException = err
    while (cause := getattr(root, "orig", None) or root.__cause__) is not None:
        root = cause  # the sqlite3 error, say
    said = " ".join(str(root).split()[:30])[:160] or type(root).__name__
    db = _sqlite_path(uri)
    if db is not None:
        fix = (
            f"make {db} writable, or if it is damaged move it aside "
            f"(`mv {db} {db}.broken`; a new store is created), or set MLFLOW_TRACKING_URI"
        )
    else:
        fix = "check that the server is up and writable, or unset MLFLOW_TRACKING_URI"
    return StageError(f"MLflow tracking store {uri} failed ({said}): {fix}.")


def _store_full(err: BaseException, stage: str | None) -> StageError | None:
    """The full-disk line of `stage` when SQLite said its disk is full, anywhere in `err`'s
    chain (MLflow passes the store's errors on in its own words)."""
    db = _sqlite_path(tracking_uri())
    if not stage or db is None:
        return None
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        if SQLITE_FULL in str(current):
            return StageError(no_space(stage, db))
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").removeprefix("file:").split("?", 1)[0])


def check_tracking_server(uri: str) -> None:
    """Stop at once with one line when an http(s) tracking server does not answer.

    Only whether something listens is probed (a TCP connect): MLflow itself would otherwise
    retry every request for minutes before failing with a traceback.
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=PROBE_SECONDS):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise StageError(
            f"MLflow tracking server {uri} is not reachable ({reason}): start it (`mlflow server "
            f"--host {parsed.hostname} --port {port} ...`), fix MLFLOW_TRACKING_URI, or unset "
            "it to log to the repository's sqlite:///mlflow.db."
        ) from None


def connect(experiment: str) -> str:
    """Point MLflow at the tracking store and the experiment; returns the experiment id.

    Checks an http(s) server first (a clear error within seconds), caps MLflow's HTTP retries,
    and creates a fresh SQLite store under a file lock: MLflow migrates a new database on first
    use, and two processes doing it at once make one of them fail. The experiment is tagged
    so that MLflow's UI opens it on the runs table.
    """
    import mlflow
    from filelock import FileLock
    from mlflow.exceptions import MlflowException

    _quiet_mlflow()
    uri = tracking_uri()
    check_tracking_server(uri)
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(uri)
    # The registry lives in the same store (a registry URI left by other code must not win).
    mlflow.set_registry_uri(uri)
    db = _sqlite_path(uri)
    lock = FileLock(f"{db}.lock", timeout=120) if db else contextlib.nullcontext()
    try:
        with lock:
            client = mlflow.MlflowClient()
            client.search_registered_models(max_results=1)  # creates the registry tables too
            exp = mlflow.set_experiment(experiment)
            if exp.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
                _tag_kind(client, exp.experiment_id)
    except MlflowException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(
            f"MLflow tracking store {uri}: {first}. Check MLFLOW_TRACKING_URI "
            "(unset it to log to the repository's sqlite:///mlflow.db)."
        ) from None
    return exp.experiment_id


def _tag_kind(client: Any, experiment_id: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    except MlflowException:  # another process tagged it first (a shared server)
        if client.get_experiment(experiment_id).tags.get(EXPERIMENT_KIND[0]) is None:
            raise


def default_run_name(
    dataset: str | None, model: str, loss: str, seed: int, conditional: bool
) -> str:
    """`digits-dcgan-ns-s0`: data set, model (`c` prefix when conditional), loss, seed."""
    short = {"non_saturating": "ns", "minimax": "mm", "hinge": "hinge"}.get(loss, loss)
    return f"{dataset or 'data'}-{'c' if conditional else ''}{model}-{short}-s{seed}"


def run_name_for(explicit: str | None, fallback: str) -> str:
    """The run's name: `mlflow.run_name` when set, else the DVC experiment's, else `fallback`."""
    return explicit or os.environ.get("DVC_EXP_NAME") or fallback


def close_stale_run() -> None:
    """Mark the run a killed `train` left open as KILLED (it can never finish now)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if not OPEN_RUN_FILE.exists():
        return
    try:
        run_id = json.loads(OPEN_RUN_FILE.read_text()).get("run_id")
        if run_id and mlflow.get_run(run_id).info.status == "RUNNING":
            mlflow.MlflowClient().set_terminated(run_id, "KILLED")
            logging.getLogger("ganforge").warning(
                "MLflow run %s of an interrupted training was still RUNNING: closed as KILLED",
                run_id,
            )
    except (MlflowException, ValueError):
        pass  # another store, or a damaged record: nothing of ours to close
    OPEN_RUN_FILE.unlink(missing_ok=True)


def _end_run(status: str) -> None:
    """End the active run with `status` on the way out of an error; never mask that error."""
    import mlflow

    active = mlflow.active_run()
    try:
        mlflow.end_run(status)
    except Exception:
        # A signal that landed inside an MLflow call can leave the fluent API unable to end
        # the run (seen once in CI: the run stayed RUNNING): close it through the client.
        if active is not None:
            with contextlib.suppress(Exception):
                mlflow.MlflowClient().set_terminated(active.info.run_id, status)


@contextlib.contextmanager
def mlflow_run(stage: str, experiment: str, run_name: str | None = None) -> Iterator[Any]:
    """Open the MLflow run of the current generator for `stage`.

    `train` starts a new run and, when it succeeds, records its id in RUN_FILE (a DVC out);
    later stages reopen that run so that one generator is one row in `mlflow ui`. When the
    recorded run is not in this tracking store (a fresh clone with a DVC remote but another
    MLflow server), a new run is started and tagged with the missing id rather than failing.
    A broken tracking store (damaged or read-only database, server down) stops the stage
    with one line naming it and the fix, from setup or from inside the block.

    Life cycle, in every stage: a run ends FINISHED, FAILED (an error) or KILLED (Ctrl-C,
    SIGTERM); a run a SIGKILL left RUNNING is closed as KILLED by the next `train`.
    """
    try:
        with sigterm_raises(), _mlflow_run(stage, experiment, run_name) as run:
            yield run
    except Exception as err:
        if _is_tracking_error(err):
            raise tracking_error(err, stage) from None
        raise


def _open_run(stage: str, experiment: str, run_name: str | None) -> tuple[Any, dict[str, str]]:
    """Start the stage's run (train: a new one; later stages: the recorded one) and the tags
    it is to get."""
    import mlflow
    from mlflow.exceptions import MlflowException

    recorded = read_run_file() if stage != "train" else None
    # The experiment is named explicitly at start_run, not left to MLflow's process-wide
    # "active experiment" (two clones creating it at once on a fresh server raced there).
    experiment_id = connect(experiment)
    run_id: str | None = None
    tags: dict[str, str] = {}
    commit = git_commit()
    if commit:
        tags["git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
    if recorded is None:  # the train stage, which starts a new run
        close_stale_run()
    else:
        try:
            experiment_id = mlflow.get_run(recorded).info.experiment_id
            run_id = recorded
        except MlflowException:
            logging.getLogger("ganforge").warning(
                "MLflow run %s (from %s) is not in %s; logging to a new run",
                recorded,
                RUN_FILE,
                tracking_uri(),
            )
            tags["ganforge.train_run_id"] = str(recorded)
    run = mlflow.start_run(
        run_id=run_id,
        experiment_id=experiment_id,
        run_name=run_name if run_id is None else None,
    )
    return run, tags


@contextlib.contextmanager
def _mlflow_run(stage: str, experiment: str, run_name: str | None) -> Iterator[Any]:
    import mlflow
    from mlflow.exceptions import MlflowException

    run, tags = _open_run(stage, experiment, run_name)
    try:
        if stage == "train":
            write_json(OPEN_RUN_FILE, {"run_id": run.info.run_id})
        mlflow.set_tags(tags)
        yield run
        mlflow.set_tag("stage." + stage, "done")
        # Only a trained generator gets its run recorded: a failed train leaves the previous
        # record (and its run ends FAILED or KILLED).
        if stage == "train":
            write_json(RUN_FILE, {"run_id": run.info.run_id, "experiment": experiment})
    except KeyboardInterrupt:
        _end_run("KILLED")
        raise
    except MlflowException as err:  # the server went away mid-stage, or refused a request
        _end_run("FAILED")
        full = _store_full(err, stage)
        if full is not None:
            raise full from None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise StageError(
            f"{stage}: MLflow at {tracking_uri()} failed: {first}. Check the server, or unset "
            "MLFLOW_TRACKING_URI to log to the repository's sqlite:///mlflow.db."
        ) from None
    except BaseException:
        _end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")
    finally:
        if stage == "train":
            OPEN_RUN_FILE.unlink(missing_ok=True)


def log_params(params: dict[str, Any]) -> None:
    """Log flattened params to the active run.

    MLflow forbids changing a logged param. When a downstream stage reruns with new values
    on the same generator (say evaluate.num_samples), the new values go in as
    `param_override.<key>` tags so that nothing is silently lost.
    """
    import mlflow

    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params if run else {}
    fresh, changed = {}, {}
    for key, value in params.items():
        text = "None" if value is None else str(value)
        if key not in existing:
            fresh[key] = text
        elif existing[key] != text:
            changed[f"param_override.{key}"] = text
    if fresh:
        mlflow.log_params(fresh)
    if changed:
        mlflow.set_tags(changed)
