"""Fixtures for the feature files: one running stack per session, one world per scenario."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.steps.world import World
from tests.support.stack import RunningStack, start_stack


@pytest.fixture(scope="session")
def stack(
    real_services: dict[str, str], pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    yield from start_stack(real_services, pg_url, tmp_path_factory.mktemp("e2e-logs"))


@pytest.fixture
def world(stack: RunningStack) -> Iterator[World]:
    w = World(stack)
    yield w
    w.end_campaigns()  # scenarios run one after another; an active campaign would leak offers
