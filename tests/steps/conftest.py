"""Fixtures for the feature files: one running stack per session, one world per scenario."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.steps.world import World
from tests.support.databases import create_database, drop_database, migrate
from tests.support.stack import RunningStack, start_stack


@pytest.fixture(scope="session")
def stack(
    real_services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    # A database of its own: campaigns that integration tests left active would otherwise
    # hand these customers their coupons.
    server = real_services["DATABASE_URL"]
    url = create_database(server, prefix="tenin_features")
    migrate(url)
    try:
        yield from start_stack(real_services, url, tmp_path_factory.mktemp("e2e-logs"))
    finally:
        drop_database(server, url)


@pytest.fixture
def world(stack: RunningStack) -> Iterator[World]:
    w = World(stack)
    yield w
    w.end_campaigns()  # scenarios run one after another; an active campaign would leak offers
