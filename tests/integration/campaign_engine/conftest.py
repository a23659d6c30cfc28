"""Integration fixtures: real PostgreSQL, Redis and Kafka for campaign_engine.

The engine decides among *all* active campaigns in its database, so a test that counts
coupons needs a database of its own: each gets a fresh copy of a migrated template
(CREATE DATABASE ... TEMPLATE, far faster than migrating per test).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine, bootstrap
from services.campaign_engine.decisions.policy import PolicyConfig
from shared.config import Settings
from shared.db import make_engine
from tests.support.databases import create_database, drop_database, migrate
from tests.unit.campaign_engine.fakes import ConstantScorer


@pytest.fixture(scope="session")
def ce_template(real_services: dict[str, str]) -> Iterator[str]:
    """A migrated database used only as a template."""
    server = real_services["DATABASE_URL"]
    url = create_database(server, prefix="tenin_cetpl")
    migrate(url)
    yield url
    drop_database(server, url)


@pytest.fixture
def fresh_db(real_services: dict[str, str], ce_template: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    server = real_services["DATABASE_URL"]
    name = f"tenin_ce_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(ce_template).database}"'))
    admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    yield url
    drop_database(server, url)


@pytest.fixture
def ce_settings(real_settings: Settings, fresh_db: str) -> Settings:
    return replace(real_settings, database_url=fresh_db)


@pytest.fixture
def make_engine_for(ce_settings: Settings) -> Iterator[Callable[..., Engine]]:
    """Build engines on the test's database and real Redis (disposed afterwards)."""
    built: list[Engine] = []

    def build(**over: object) -> Engine:
        over.setdefault("scorer", ConstantScorer())
        over.setdefault("policy", PolicyConfig(mode="greedy"))
        settings = over.pop("settings", ce_settings)
        engine = bootstrap(
            settings,
            db=make_engine(str(settings.database_url), pool_size=40),  # type: ignore[attr-defined]
            **over,
        )  # type: ignore[arg-type]
        built.append(engine)
        return engine

    yield build
    for engine in built:
        engine.db.dispose()


@pytest.fixture
def engine(make_engine_for: Callable[..., Engine]) -> Engine:
    return make_engine_for()


@pytest.fixture
def sessions(engine: Engine) -> Callable[[], Session]:
    return engine.sessions
