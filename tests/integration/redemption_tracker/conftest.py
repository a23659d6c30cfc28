"""Integration fixtures: the tracker on the session's real, migrated PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.redemption_tracker.bootstrap import Tracker, bootstrap
from shared.config import Settings
from tests.support.redemption_tracker.fixtures import auth, client, store

__all__ = ["auth", "client", "store"]  # the shared app fixtures, on this layer's tracker


@pytest.fixture(scope="session")
def pg_tracker(real_settings: Settings) -> Iterator[Tracker]:
    tracker = bootstrap(real_settings, pool_size=20)
    yield tracker
    tracker.engine.dispose()


@pytest.fixture
def tracker(pg_tracker: Tracker) -> Tracker:
    return pg_tracker
