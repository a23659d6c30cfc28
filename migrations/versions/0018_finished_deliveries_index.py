"""chat_agent's finished deliveries (sent, failed, cancelled) get a partial index on
created_at, so the relay can prune those older than TENIN_DELIVERY_RETENTION_DAYS oldest
first, a batch at a time (shared/retention.py); pending and held rows are not in it

Built CONCURRENTLY on PostgreSQL: the table may be large and the delivery loop keeps
writing it.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = sa.text("status IN ('sent', 'failed', 'cancelled')")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_deliveries_finished_created_at",
            "deliveries",
            ["created_at"],
            schema="chat_agent",
            postgresql_where=FINISHED,
            sqlite_where=FINISHED,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_deliveries_finished_created_at",
            "deliveries",
            schema="chat_agent",
            postgresql_concurrently=True,
            if_exists=True,
        )
