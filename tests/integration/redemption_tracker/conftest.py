"""Integration fixtures: the tracker on the session's real, migrated PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker, bootstrap
from shared.config import Settings
from tests.unit.redemption_tracker.builders import keys, uid


@pytest.fixture(scope="session")
def pg_tracker(real_settings: Settings) -> Iterator[Tracker]:
    tracker = bootstrap(real_settings, pool_size=20)
    yield tracker
    tracker.engine.dispose()


@pytest.fixture
def tracker(pg_tracker: Tracker) -> Tracker:
    return pg_tracker


@pytest.fixture
def client(tracker: Tracker) -> FlaskClient:
    return create_app(tracker=tracker).test_client()


@pytest.fixture
def store() -> str:
    return uid("S")


@pytest.fixture
def auth(tracker: Tracker, store: str) -> dict[str, str]:
    return keys(tracker, store)
