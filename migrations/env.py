"""Alembic environment: one history for every service's schema, on PostgreSQL or SQLite."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context

from migrations.metadata import target_metadata
from shared.config import Settings
from shared.db import SCHEMAS, make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return config.attributes.get("url") or Settings.from_env().effective_database_url


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Compare only tenin's own schemas (Postgres has others, SQLite has `main`)."""
    if type_ == "schema":
        return name in SCHEMAS
    return True


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        include_schemas=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), pool_size=1)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,
            include_name=include_name,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
