"""What every stage shares: paths of the DVC outs, upstream checks, logging set-up, MLflow runs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.logging import RichHandler

from ganforge.io import write_json

# The DVC outs, one home each: dvc.yaml names the same paths.
PREPARED_DIR = Path("data/prepared")
CLASSIFIER_PATH = Path("models/classifier.pt")
GENERATOR_PATH = Path("models/generator.pt")
CHECKPOINT_DIR = Path("models/checkpoints")
RUN_FILE = Path("models/mlflow_run.json")
ONNX_PATH = Path("models/generator.onnx")
METRICS_DIR = Path("metrics")
REPORTS_DIR = Path("reports")  # every figure of a stage; metrics/ keeps the headline ones
PLOTS_DIR = Path("plots")

# Which stage produces which out, for "run this stage first" messages.
PRODUCED_BY = {
    PREPARED_DIR: "prepare",
    CLASSIFIER_PATH: "classifier",
    GENERATOR_PATH: "train",
    RUN_FILE: "train",
    ONNX_PATH: "export",
}


class StageError(SystemExit):
    """A stage cannot go on: exit with this message rather than a traceback."""


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Rich console logging for a stage; the library logs through `logging` too."""
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("alembic", "mlflow.store", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger("ganforge")


def require_upstream(*paths: Path) -> None:
    """Stop with a message naming the stage to run when an upstream out is missing."""
    for path in paths:
        if not path.exists():
            stage = PRODUCED_BY.get(path) or next(
                (s for p, s in PRODUCED_BY.items() if p in path.parents), None
            )
            hint = f"run `dvc repro {stage}` first" if stage else "run `dvc repro` first"
            raise StageError(f"{path} is missing: {hint}.")


def repo_root() -> Path:
    """The project's root, also from inside a temp workspace of `dvc exp run --queue`.

    Queued experiments run in a copy under `<repo>/.dvc/tmp/exps/`; their runs belong in the
    repository's own tracking database, not in a copy that is deleted afterwards.
    """
    cwd = Path.cwd().resolve()
    parts = cwd.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


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


def tracking_error(err: BaseException) -> StageError:
    """One line naming the tracking store, what it said and how to get going again."""
    uri = tracking_uri()
    root: BaseException = err
    while (cause := getattr(root, "orig", None) or root.__cause__) is not None:
        root = cause  # the sqlite3 error, say
    said = " ".join(str(root).split()[:30])[:160] or type(root).__name__
    if uri.startswith("sqlite:///"):
        db = uri.removeprefix("sqlite:///").removeprefix("file:").split("?")[0]
        fix = (
            f"make {db} writable, or if it is damaged move it aside "
            f"(`mv {db} {db}.broken`; a new store is created), or set MLFLOW_TRACKING_URI"
        )
    else:
        fix = "check that the server is up and writable, or unset MLFLOW_TRACKING_URI"
    return StageError(f"MLflow tracking store {uri} failed ({said}): {fix}.")


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
# The run that `train` has open, kept beside the checkpoints (a persisted DVC out) so that the
# next start can close it when the process was killed before it could.
OPEN_RUN_FILE = CHECKPOINT_DIR / "open_mlflow_run.json"


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


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
                try:
                    client.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
                except MlflowException:  # another process tagged it first (a shared server)
                    if (
                        client.get_experiment(exp.experiment_id).tags.get(EXPERIMENT_KIND[0])
                        is None
                    ):
                        raise
    except MlflowException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(
            f"MLflow tracking store {uri}: {first}. Check MLFLOW_TRACKING_URI "
            "(unset it to log to the repository's sqlite:///mlflow.db)."
        ) from None
    return exp.experiment_id


# `ganforge ui`: the runs table as a comparison opens, through MLflow's own "shared view"
# (an experiment tag `mlflow.sharedViewState.<key>` holding the table's state as JSON, named by
# `?viewStateShareKey=<key>` in the URL) and its `workflowType` URL parameter (MLflow 3.17's UI
# otherwise follows the GenAI / model-training switch kept in the browser, GenAI by default,
# whatever the experiment's kind tag says).
RUNS_VIEW_KEY = "ganforge-runs"
SHARED_VIEW_TAG = "mlflow.sharedViewState."
SORT_METRIC = "eval.fid"  # lower is better
HEADLINE_METRICS = (
    "eval.fid",
    "eval.fid_over_floor",
    "eval.precision",
    "eval.recall",
    "eval.classes_covered",
    "final_train_seconds",
)
MAX_CHANGED_PARAMS = 12


def _column(kind: str, key: str) -> str:
    """A column of MLflow's runs table as its UI names it: metrics.`eval.fid`."""
    return f"{kind}.`{key}`"


def changed_params(runs: Sequence[Any], limit: int = MAX_CHANGED_PARAMS) -> list[str]:
    """The param keys whose values differ between `runs` (MLflow Run objects), at most
    `limit`, train.* first: what tells one row of the table from another."""
    keys = sorted({k for run in runs for k in run.data.params})
    changed = [k for k in keys if len({run.data.params.get(k) for run in runs}) > 1]
    changed.sort(key=lambda k: (not k.startswith("train."), k))
    return changed[:limit]


def runs_view(experiment_id: str) -> str:
    """Store the comparison view of an experiment's runs; returns its URL fragment.

    The view: sorted by eval.fid ascending, the headline metrics and the params that differ
    between the runs as columns, in MLflow's model-training mode.
    """
    import mlflow

    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id], max_results=1000)
    columns = [_column("metrics", m) for m in HEADLINE_METRICS]
    columns += [_column("params", p) for p in changed_params(runs)]
    state = {
        "orderByKey": _column("metrics", SORT_METRIC),
        "orderByAsc": True,
        "selectedColumns": columns,
        "runListHidden": False,
        "viewMaximized": False,
    }
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + RUNS_VIEW_KEY, json.dumps(state))
    return (
        f"/#/experiments/{experiment_id}/runs"
        f"?viewStateShareKey={RUNS_VIEW_KEY}&workflowType=machine_learning"
    )


# `ganforge runs`: (metric, column title, format) of the headline scores, in table order.
RUNS_COLUMNS = (
    ("eval.fid", "FID", "{:.3f}"),
    ("eval.fid_over_floor", "/floor", "{:.1f}"),
    ("eval.precision", "prec", "{:.2f}"),
    ("eval.recall", "rec", "{:.2f}"),
    ("eval.classes_covered", "classes", "{:.0f}"),
    ("final_train_seconds", "train s", "{:.0f}"),
)


def runs_rows(experiment: str, registered_model: str | None) -> tuple[list[str], list[dict]]:
    """The experiment's finished runs, best FID first: (changed param keys, one dict per run
    with its name, headline metrics, changed params and whether it is the champion)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return [], []
    runs = client.search_runs(
        [exp.experiment_id], "attributes.status = 'FINISHED'", max_results=1000
    )
    champion = None
    if registered_model:
        try:
            champion = client.get_model_version_by_alias(registered_model, "champion").run_id
        except MlflowException:
            champion = None
    keys = changed_params(runs)
    rows = [
        {
            "name": run.info.run_name or run.info.run_id[:8],
            "champion": run.info.run_id == champion,
            "metrics": run.data.metrics,
            "params": {k: run.data.params.get(k, "-") for k in keys},
        }
        for run in runs
    ]
    rows.sort(key=lambda r: (r["metrics"].get("eval.fid", float("inf")), r["name"]))
    return keys, rows


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
    import json

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


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a CI timeout) turned into an exception so that the run gets closed."""


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated(f"signal {signum}")


def _end_run(status: str) -> None:
    """End the active run with `status` on the way out of an error; never mask that error."""
    import mlflow

    with contextlib.suppress(Exception):
        mlflow.end_run(status)


@contextlib.contextmanager
def mlflow_run(stage: str, experiment: str, run_name: str | None = None) -> Iterator[Any]:
    """Open the MLflow run of the current generator for `stage`.

    `train` starts a new run and, when it succeeds, records its id in RUN_FILE (a DVC out);
    later stages reopen that run so that one generator is one row in `mlflow ui`. When the
    recorded run is not in this tracking store (a fresh clone with a DVC remote but another
    MLflow server), a new run is started and tagged with the missing id rather than failing.
    A broken tracking store (damaged or read-only database, server down) stops the stage
    with one line naming it and the fix, from setup or from inside the block.

    Life cycle: a run ends FINISHED, FAILED (an error) or KILLED (Ctrl-C, SIGTERM); a run a
    SIGKILL left RUNNING is closed as KILLED by the next `train`.
    """
    try:
        with _mlflow_run(stage, experiment, run_name) as run:
            yield run
    except Exception as err:
        if _is_tracking_error(err):
            raise tracking_error(err) from None
        raise


@contextlib.contextmanager
def _mlflow_run(stage: str, experiment: str, run_name: str | None) -> Iterator[Any]:
    import mlflow
    from mlflow.exceptions import MlflowException

    recorded = read_run_file() if stage != "train" else None
    # The experiment is named explicitly at start_run, not left to MLflow's process-wide
    # "active experiment" (two clones creating it at once on a fresh server raced there).
    experiment_id = connect(experiment)
    run_id: str | None = None
    tags: dict[str, str] = {}
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
    previous = None
    if stage == "train":
        write_json(OPEN_RUN_FILE, {"run_id": run.info.run_id})
        with contextlib.suppress(ValueError):  # not the main thread: no handler
            previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        commit = git_commit()
        if commit:
            tags["git.commit"] = commit
        if os.environ.get("DVC_EXP_NAME"):
            tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
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
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def write_metrics(
    stage: str,
    figures: dict[str, Any],
    headline: Sequence[str],
    staged: dict[Path, Path] | None = None,
) -> dict[str, Any]:
    """Write reports/<stage>.json (every figure) and metrics/<stage>.json (the headline ones).

    DVC diffs every number of a metrics file in `dvc exp show` / `dvc metrics diff`; only the
    figures that compare across runs belong there. Timings, latencies, sample counts and
    per-batch rows stay in the report, a plain out. With `staged` (from `staged_outputs`),
    each file goes to its staged path. Returns the headline subset.
    """
    report, metrics = REPORTS_DIR / f"{stage}.json", METRICS_DIR / f"{stage}.json"
    staged = staged or {}
    write_json(staged.get(report, report), figures)
    top = {k: figures[k] for k in headline if figures.get(k) is not None}
    write_json(staged.get(metrics, metrics), top)
    return top


@contextlib.contextmanager
def staged_outputs(*paths: Path) -> Iterator[dict[Path, Path]]:
    """Temp paths with the same file names as `paths`, moved into place only on success.

    A stage writes (and logs to MLflow) the staged files; when anything in the block fails,
    the outs keep their previous content. Each staged file sits in a hidden folder beside
    its target, so the final rename is atomic and MLflow artifacts keep the real names.
    Folders left behind by a killed stage are removed first.
    """
    dirs: list[Path] = []
    staged: dict[Path, Path] = {}
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            for stale in path.parent.glob(f".{path.name}.*.staged"):
                shutil.rmtree(stale, ignore_errors=True)
            folder = Path(
                tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".staged", dir=path.parent)
            )
            dirs.append(folder)
            staged[path] = folder / path.name
        yield staged
        for path, tmp in staged.items():
            if tmp.exists():
                os.replace(tmp, path)
    finally:
        for folder in dirs:
            shutil.rmtree(folder, ignore_errors=True)


def read_generator(path: Path = GENERATOR_PATH, **kwargs: Any) -> Any:
    """`load_generator` for a stage: an unreadable file is one line naming it and the fix."""
    from ganforge.models import load_generator

    require_upstream(path)
    try:
        return load_generator(path, **kwargs)
    except Exception as err:  # torch.load/unpickling/state-dict errors all mean one thing
        said = " ".join(str(err).split()[:12])[:100]
        raise StageError(
            f"{path} cannot be read as a ganforge generator ({type(err).__name__}: {said}): "
            f"restore it with `dvc checkout {path}` or retrain with `dvc repro train`."
        ) from None


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
