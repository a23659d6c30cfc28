"""One Alembic history, up and down, on real PostgreSQL (and SQLite)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from shared.db import SCHEMAS, make_engine
from tests.support.databases import (
    alembic_config,
    create_database,
    downgrade,
    drop_database,
    migrate,
)


def _tables(url: str) -> set[str]:
    engine = make_engine(url) if url.startswith("sqlite") else create_engine(url)
    try:
        insp = inspect(engine)
        schemas = set(insp.get_schema_names())
        return {
            f"{schema}.{table}"
            for schema in SCHEMAS
            if schema in schemas
            for table in insp.get_table_names(schema=schema)
        }
    finally:
        engine.dispose()


def _up_down_up(url: str) -> None:
    migrate(url)
    created = _tables(url)
    assert {
        "auth.api_keys",
        "campaign_engine.outbox",
        "redemption_tracker.processed_events",
    } <= created
    command.check(alembic_config(url))  # models and migrations agree
    downgrade(url)
    assert _tables(url) == set()
    migrate(url)
    assert _tables(url) == created


def test_migrations_up_down_and_check_on_postgres(real_services: dict[str, str]) -> None:
    server = real_services["DATABASE_URL"]
    url = create_database(server, prefix="tenin_migrations")
    try:
        _up_down_up(url)
    finally:
        drop_database(server, url)


def test_migrations_up_down_and_check_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _up_down_up(f"sqlite:///{tmp_path / 'tenin.db'}")
