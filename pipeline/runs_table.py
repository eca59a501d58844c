"""The runs of an experiment side by side: the rows of `ganforge runs` and the comparison view
that `ganforge ui` opens in MLflow (best FID first, headline scores, the params that differ)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
