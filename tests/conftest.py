"""Fixtures shared by every test layer.

Integration and e2e tests need the real services that `scripts/services up` starts
(PostgreSQL, Redis, Apache Kafka). Under CI a missing service is a hard failure, never
a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.config import Settings
from tests.support import strong_secrets

strong_secrets.install()  # before any test builds Settings or spawns a service
# Load and race tests (50 tills at once, 20 concurrent requests of one customer, thousands
# of POS requests) must not meet the rate limits; the tests of the limits themselves pass
# their own Limits (tests/unit/shared/test_ratelimit.py, test_issuance_limit.py).
for _bucket in ("KEY_MARKETER", "KEY_POS", "KEY_MEMBERS", "KEY_ADMIN", "STORE", "ISSUANCE"):
    os.environ.setdefault(f"TENIN_RATE_LIMIT_{_bucket}", "100000/1000000")
REAL_SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
# (the broker's address, its topics when the session started): the topics made since are
# deleted at its end (tests/support/kafka_tools.py says why), unless
# TENIN_KEEP_TEST_TOPICS=1 (to look at them after a run).
TOPICS_AT_START = pytest.StashKey[tuple[str, set[str]]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers or os.environ.get("TENIN_KEEP_TEST_TOPICS") == "1":
        return
    from tests.support.kafka_tools import topic_names

    try:
        session.config.stash[TOPICS_AT_START] = (servers, topic_names(servers))
    except Exception as exc:  # no broker yet: the tests that need one say so themselves
        print(f"\nnot tracking this run's Kafka topics: {exc!r}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    tracked = session.config.stash.get(TOPICS_AT_START, None)
    if tracked is None:
        return
    from tests.support.kafka_tools import delete_topics_made_since

    deleted = delete_topics_made_since(*tracked)
    print(
        f"\ndeleted the {deleted} Kafka topics this run made (TENIN_KEEP_TEST_TOPICS=1 keeps them)"
    )


def _real_services_missing() -> list[str]:
    return [name for name in REAL_SERVICE_VARS if not os.environ.get(name)]


@pytest.fixture(scope="session")
def real_services() -> dict[str, str]:
    """The URLs of the real services; fails under CI and skips locally if absent."""
    missing = _real_services_missing()
    if missing:
        message = f'real services not configured ({", ".join(missing)}): run `eval "$(scripts/services up)"`'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {name: os.environ[name] for name in REAL_SERVICE_VARS}


@pytest.fixture(scope="session")
def pg_url(real_services: dict[str, str]) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head for this test session."""
    from tests.support.databases import create_database, drop_database, migrate

    server = real_services["DATABASE_URL"]
    url = create_database(server)
    migrate(url)
    yield url
    drop_database(server, url)


@pytest.fixture(scope="session")
def real_settings(
    real_services: dict[str, str], pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at the real services and the session's database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = pg_url
    env["TENIN_BROKER_FLAVOR"] = "kafka"
    env["TENIN_DATA_DIR"] = str(tmp_path_factory.mktemp("tenin-data"))
    return Settings.from_env(env)


@pytest.fixture
def unique() -> str:
    """A random id fragment: tests isolate by fresh ids rather than teardown."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database file (the embedded default)."""
    from tests.support.databases import migrate

    path: Path = tmp_path_factory.mktemp("sqlite") / "tenin.db"
    url = f"sqlite:///{path}"
    migrate(url)
    return url


@pytest.fixture
def sqlite_sessions(sqlite_url: str) -> Callable[[], Session]:
    """Sessions on the migrated SQLite database (tests isolate by fresh ids)."""
    from shared.db import make_engine, make_session_factory

    return make_session_factory(make_engine(sqlite_url))
