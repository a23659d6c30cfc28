"""The tracker's app fixtures, over whichever `tracker` the test layer's conftest provides.

Unit tests run the tracker on a migrated SQLite file, integration tests on the session's
PostgreSQL; everything above the tracker is the same, and lives here. A conftest imports
these fixtures by name.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from tests.support.redemption_tracker.builders import keys, uid


@pytest.fixture
def client(tracker: Tracker) -> FlaskClient:
    return create_app(tracker=tracker).test_client()


@pytest.fixture
def store() -> str:
    return uid("S")


@pytest.fixture
def auth(tracker: Tracker, store: str) -> dict[str, str]:
    return keys(tracker, store)
