"""The repository's `pipeline/` as the CLI uses it: the one module that names its functions.

`ganforge ui`, `runs` and `--champion` read params.yaml and the tracking store exactly as the
stages do, by calling the stages' own code (never a copy of it); the CLI runs in the
repository's root, where `pipeline/` is.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from ganforge.cli.common import fail

# The pipeline modules that hold what the CLI calls.
PARAMS = "params"  # load_params
TRACKING = "tracking"  # tracking_uri, connect
RUNS_TABLE = "runs_table"  # runs_view, runs_rows, RUNS_COLUMNS


def pipeline_module(name: str) -> ModuleType:
    """A module of the repository's `pipeline/` (the CLI runs in the repository root)."""
    import importlib
    import sys

    try:
        return importlib.import_module(f"pipeline.{name}")
    except ModuleNotFoundError:
        if not (Path.cwd() / "pipeline" / "__init__.py").is_file():
            fail("run this in the ganforge repository's root (where dvc.yaml and pipeline/ are)")
    sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(f"pipeline.{name}")


def require() -> None:
    """Fail now, with the one-line hint, when the CLI does not run in the repository root."""
    for name in (TRACKING, RUNS_TABLE, PARAMS):
        pipeline_module(name)


def mlflow_settings() -> Any:
    """params.yaml's validated `mlflow` section (a stage error exits with its one line)."""
    return pipeline_module(PARAMS).load_params().mlflow


def tracking_uri() -> str:
    """The tracking store's URI, as the stages resolve it."""
    return pipeline_module(TRACKING).tracking_uri()


def connect(experiment: str) -> str:
    """Check the tracking store and return `experiment`'s id (created when missing)."""
    return pipeline_module(TRACKING).connect(experiment)


def runs_view(experiment_id: str) -> str:
    """The MLflow UI's URL fragment showing the experiment's runs sorted by FID."""
    return pipeline_module(RUNS_TABLE).runs_view(experiment_id)


def runs_rows(experiment: str, registered_model: str | None) -> tuple[list[str], list[dict]]:
    """(changed param keys, one row per finished run, best FID first)."""
    return pipeline_module(RUNS_TABLE).runs_rows(experiment, registered_model)


def runs_columns() -> tuple[tuple[str, str, str], ...]:
    """(metric, column title, format) of each score column of `ganforge runs`."""
    return tuple(pipeline_module(RUNS_TABLE).RUNS_COLUMNS)
