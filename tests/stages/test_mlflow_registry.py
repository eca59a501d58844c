"""The champion policy: a registered version is champion only when it beats the current one."""

from __future__ import annotations

import pytest

from pipeline.registry import CHALLENGER, CHAMPION, decide, promote, version_tags

SCORES = {"fid": 5.0, "fid_floor": 0.16, "precision": 0.7, "backend": "classifier"}


def test_version_tags_carry_the_scores_the_data_and_the_backend() -> None:
    tags = version_tags({**SCORES, "kid_mean": float("nan"), "num_samples": 10}, "abc", "r1")
    assert tags["eval.fid"] == "5.0" and tags["eval.precision"] == "0.7"
    assert "eval.kid_mean" not in tags and "eval.num_samples" not in tags  # no NaN, no counts
    assert tags["dataset_hash"] == "abc" and tags["eval.backend"] == "classifier"
    assert tags["run_name"] == "r1"


def test_decide_moves_the_champion_only_on_a_comparable_lower_fid() -> None:
    champ = version_tags(SCORES, "abc", "old")
    assert decide(version_tags(SCORES, "abc", "new"), None)[0] == CHAMPION
    assert decide(version_tags({**SCORES, "fid": 4.0}, "abc", "new"), champ)[0] == CHAMPION
    assert decide(version_tags({**SCORES, "fid": 5.0}, "abc", "new"), champ)[0] == CHALLENGER
    assert decide(version_tags({**SCORES, "fid": 9.0}, "abc", "new"), champ)[0] == CHALLENGER
    other_data = version_tags({**SCORES, "fid": 0.1}, "xyz", "new")
    alias, why = decide(other_data, champ)
    assert alias == CHALLENGER and "dataset_hash" in why
    other_net = version_tags({**SCORES, "fid": 0.1, "backend": "inception"}, "abc", "new")
    assert decide(other_net, champ)[0] == CHALLENGER
    unscored = version_tags({"backend": "classifier"}, "abc", "new")
    assert decide(unscored, None)[0] == CHALLENGER


def test_champion_alias_moves_and_loads_with_pyfunc(tmp_path, monkeypatch) -> None:
    import mlflow
    import numpy as np
    import pandas as pd

    class Labelled(mlflow.pyfunc.PythonModel):
        """Answers with its own label, to tell the versions apart once loaded."""

        def __init__(self, label: str) -> None:
            self.label = label

        def predict(self, context, model_input, params=None):
            return np.array([self.label] * len(model_input))

    monkeypatch.chdir(tmp_path)  # the store's default artifact root is ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("registry")
    client = mlflow.MlflowClient()
    name = "gf-champ"
    steps = [  # (label, fid, data hash) -> expected champion label afterwards
        ("v1", 5.0, "abc", "v1"),
        ("v2", 7.0, "abc", "v1"),  # worse: challenger
        ("v3", 3.0, "abc", "v3"),  # better: champion
        ("v4", 0.5, "xyz", "v3"),  # other data: not comparable
    ]
    for label, fid, data, expected in steps:
        with mlflow.start_run(run_name=label):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=Labelled(label), registered_model_name=name
            )
        version = str(info.registered_model_version)
        alias = promote(name, version, version_tags({**SCORES, "fid": fid}, data, label))
        champion = client.get_model_version_by_alias(name, CHAMPION)
        assert champion.tags["run_name"] == expected, (label, alias)
        assert champion.tags["eval.fid"] and champion.tags["alias_decision"]
        if label != expected:
            assert str(client.get_model_version_by_alias(name, CHALLENGER).version) == version
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    assert list(model.predict(pd.DataFrame({"x": [1, 2]}))) == ["v3", "v3"]
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(name, "nonexistent")


def test_settle_waits_for_both_the_version_and_the_scores(tmp_path, monkeypatch) -> None:
    import mlflow

    from pipeline.registry import settle

    class Echo(mlflow.pyfunc.PythonModel):
        """Returns its input."""

        def predict(self, context, model_input, params=None):
            return model_input

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("settle")
    with mlflow.start_run(run_name="r") as run:
        mlflow.set_tag("dataset_hash", "abc")
        mlflow.log_param("evaluate.backend", "classifier")
        assert settle("gf-settle", run.info.run_id) is None  # no version yet
        mlflow.pyfunc.log_model(name="m", python_model=Echo(), registered_model_name="gf-settle")
        assert settle("gf-settle", run.info.run_id) is None  # not evaluated yet
        mlflow.log_metrics({"eval.fid": 4.0, "eval.precision": 0.6})
        assert settle("gf-settle", run.info.run_id) == CHAMPION  # export first, then evaluate
        assert settle("gf-settle", run.info.run_id) is None  # judged once
    version = mlflow.MlflowClient().get_model_version_by_alias("gf-settle", CHAMPION)
    assert version.tags["eval.fid"] == "4.0" and version.tags["eval.backend"] == "classifier"
    assert version.tags["dataset_hash"] == "abc" and version.tags["run_name"] == "r"


def test_a_concurrent_champion_is_read_again_and_judged_against(tmp_path, monkeypatch) -> None:
    """Two clones on one server: the other one's version takes `champion` between our read
    and our write, and the store refuses our insert; we decide again against its scores."""
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("race")
    client = mlflow.MlflowClient()
    name = "gf-race"
    client.create_registered_model(name)
    ours, theirs = (
        client.create_model_version(name, source=str(tmp_path / label)).version
        for label in ("ours", "theirs")
    )
    for key, value in version_tags({**SCORES, "fid": 2.0}, "abc", "theirs").items():
        client.set_model_version_tag(name, theirs, key, value)
    real_set = mlflow.MlflowClient.set_registered_model_alias
    calls: list[tuple[str, str]] = []

    def racing(self, model, alias, version):
        calls.append((alias, str(version)))
        if len(calls) == 1:  # the other clone wins the race, then ours is refused
            real_set(self, model, CHAMPION, theirs)
            raise MlflowException("UniqueViolation: registered_model_alias_pk")
        return real_set(self, model, alias, version)

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", racing)
    alias = promote(name, str(ours), version_tags({**SCORES, "fid": 3.0}, "abc", "ours"))
    assert calls == [(CHAMPION, str(ours)), (CHALLENGER, str(ours))]
    assert alias == CHALLENGER  # FID 3 does not beat the winner's 2
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == str(theirs)
