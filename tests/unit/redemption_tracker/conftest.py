"""Unit-level fixtures: the tracker on a migrated SQLite file (the embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.redemption_tracker.bootstrap import Tracker, bootstrap
from shared.config import Settings
from tests.support.redemption_tracker.builders import uid
from tests.support.redemption_tracker.fixtures import auth, client, store

__all__ = ["auth", "client", "store"]  # the shared app fixtures, on this layer's tracker


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
