"""CI's migration check: up, check, down, up on PostgreSQL and SQLite."""

from __future__ import annotations

import os
import sys
import tempfile

from alembic import command

from tests.support.databases import alembic_config, create_database, drop_database


def cycle(url: str) -> None:
    """upgrade head → alembic check → downgrade base → upgrade head."""
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    command.check(cfg)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def main() -> int:
    server = os.environ.get("DATABASE_URL")
    if not server:
        print("DATABASE_URL is not set (run scripts/services up)", file=sys.stderr)
        return 2
    url = create_database(server, prefix="tenin_ci_migrations")
    try:
        cycle(url)
        print("migrations ok on PostgreSQL", file=sys.stderr)
    finally:
        drop_database(server, url)
    with tempfile.TemporaryDirectory() as tmp:
        cycle(f"sqlite:///{tmp}/tenin.db")
        print("migrations ok on SQLite", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
