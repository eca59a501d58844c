"""Model registry policy: which registered generator is the `champion`.

Every export registers a version. Once its run holds both the version and the test scores
(`evaluate` and `export` both call `settle`, whichever comes second decides: neither has to
wait for the other in dvc.yaml, which keeps `dvc exp show` narrow), the version carries
its test scores as tags; the alias
`champion` moves to it only when it beats the current champion on the same data set (content
hash) and the same feature backend (a lower FID; FIDs from different data or features are not
comparable). Otherwise the new version becomes the `challenger`. Policy, not computation:
it lives in pipeline/, beside the stages that call it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
# The scores a version carries as tags (those present in reports/eval.json).
SCORE_KEYS = (
    "fid",
    "fid_floor",
    "fid_over_floor",
    "kid_mean",
    "is_mean",
    "precision",
    "recall",
    "classes_covered",
    "modes_covered",
    "high_quality_fraction",
    "jsd",
)
SCORE = "fid"  # lower is better


def version_tags(scores: dict[str, Any], dataset_hash: str | None, run_name: str) -> dict[str, str]:
    """The tags of a new version: its test scores, data set hash, feature backend, run name."""
    tags = {f"eval.{k}": repr(float(scores[k])) for k in SCORE_KEYS if _finite(scores.get(k))}
    tags["dataset_hash"] = dataset_hash or ""
    tags["eval.backend"] = str(scores.get("backend") or "")
    tags["run_name"] = run_name
    return tags


def decide(new: dict[str, str], champion: dict[str, str] | None) -> tuple[str, str]:
    """`(alias, why)` for a new version's tags given the current champion's (None: no champion).

    The first scored version is champion. A later one must have the same data set hash and
    backend and a strictly lower FID.
    """
    score = _score(new)
    if score is None:
        return CHALLENGER, f"no {SCORE} was measured for it (run `dvc repro evaluate` first)"
    if champion is None:
        return CHAMPION, "first scored version"
    for key in ("dataset_hash", "eval.backend"):
        if new.get(key) != champion.get(key):
            return CHALLENGER, f"{key} differs from the champion's: the scores do not compare"
    best = _score(champion)
    if best is None:
        return CHAMPION, f"{SCORE} {score:.4g}; the champion has none"
    if score < best:
        return CHAMPION, f"{SCORE} {score:.4g} beats the champion's {best:.4g}"
    return CHALLENGER, f"{SCORE} {score:.4g} does not beat the champion's {best:.4g}"


def promote(name: str, version: str, tags: dict[str, str], attempts: int = 4) -> str:
    """Tag `version` of registered model `name` and point `champion` or `challenger` at it.

    Two clones exporting at the same moment to one server can both find no champion and both
    insert the alias; the store refuses the second insert. The loser reads the champion again
    and decides again (against the version that won), up to `attempts` times.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    for attempt in range(1, attempts + 1):
        try:
            current = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:  # no champion yet
            current = None
        alias, why = decide(tags, dict(current.tags) if current is not None else None)
        try:
            client.set_registered_model_alias(name, alias, version)
            break
        except MlflowException:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)  # another process set this alias at the same moment
    client.set_model_version_tag(name, version, "alias_decision", why)
    logging.getLogger("ganforge").info("%s version %s is the %s: %s", name, version, alias, why)
    return alias


def settle(name: str, run_id: str) -> str | None:
    """Judge the newest version of `name` logged by run `run_id`, once it has been evaluated.

    Returns the alias given, or None while the run lacks its version (not exported yet) or
    its scores (not evaluated yet), or when the version was judged before.
    """
    import mlflow

    client = mlflow.MlflowClient()
    versions = [v for v in client.search_model_versions(f"run_id = '{run_id}'") if v.name == name]
    if not versions:
        return None
    version = max(versions, key=lambda v: int(v.version))
    if "alias_decision" in (version.tags or {}):
        return None
    run = client.get_run(run_id)
    scores: dict[str, Any] = {
        k.removeprefix("eval."): v for k, v in run.data.metrics.items() if k.startswith("eval.")
    }
    if not scores:
        return None
    scores["backend"] = run.data.params.get("evaluate.backend")
    tags = version_tags(scores, run.data.tags.get("dataset_hash"), run.info.run_name)
    return promote(name, str(version.version), tags)


def _score(tags: dict[str, str]) -> float | None:
    try:
        value = float(tags.get(f"eval.{SCORE}", "nan"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
