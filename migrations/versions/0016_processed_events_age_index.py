"""processed_events get an index on processed_at, so the relay can prune the records older
than TENIN_PROCESSED_EVENTS_RETENTION_DAYS oldest first, a batch at a time
(shared/retention.py)

Built CONCURRENTLY on PostgreSQL: a deployment's tables may hold millions of records and
its consumers keep writing them while the index is built.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = ("campaign_engine", "chat_agent", "redemption_tracker")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for schema in SCHEMAS:
            op.create_index(
                f"ix_{schema}_processed_events_processed_at",
                "processed_events",
                ["processed_at"],
                schema=schema,
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for schema in SCHEMAS:
            op.drop_index(
                f"ix_{schema}_processed_events_processed_at",
                "processed_events",
                schema=schema,
                postgresql_concurrently=True,
                if_exists=True,
            )
