"""Helpers for migration scripts."""

from alembic import op


def create_schema(name: str) -> None:
    """CREATE SCHEMA on PostgreSQL; on SQLite a schema is an ATTACHed file (shared.db)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')


def drop_schema(name: str) -> None:
    """DROP SCHEMA on PostgreSQL (the schema must be empty by then)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP SCHEMA IF EXISTS "{name}"')
