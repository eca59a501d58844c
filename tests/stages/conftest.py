"""Fixtures of the stage tests: an MLflow store to copy into each stage's workspace."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def blank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, migrated once (seconds) and copied per test (instant)."""
    import mlflow

    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db
