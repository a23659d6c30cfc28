"""Unit-level fixtures: the tracker on a migrated SQLite file (the embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker, bootstrap
from shared.config import Settings
from tests.unit.redemption_tracker.builders import keys, uid


@pytest.fixture(scope="session")
def sqlite_tracker(sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    settings = Settings(
        database_url=sqlite_url,
        secret_key="unit-secret-" + uid(),
        data_dir=Path(tmp_path_factory.mktemp("rt")),
    )
    tracker = bootstrap(settings)
    yield tracker
    tracker.engine.dispose()


@pytest.fixture
def tracker(sqlite_tracker: Tracker) -> Tracker:
    return sqlite_tracker


@pytest.fixture
def client(tracker: Tracker) -> FlaskClient:
    return create_app(tracker=tracker).test_client()


@pytest.fixture
def store() -> str:
    return uid("S")


@pytest.fixture
def auth(tracker: Tracker, store: str) -> dict[str, str]:
    return keys(tracker, store)
