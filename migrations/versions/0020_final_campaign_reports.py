"""redemption_tracker.campaign_reports holds each ended campaign's final report, frozen by
the period closer at the campaign's last close and served from then on; the tracker's
copies of decisions and deliveries get an index on their age, so the relay can prune the
rows of frozen campaigns older than TENIN_TRACKER_COPY_RETENTION_DAYS oldest first, a
batch at a time (reports/final.py, shared/retention.py)

The indexes are built CONCURRENTLY on PostgreSQL: the copies grow by a row per follower of
every drop, and the consumers keep writing them.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "redemption_tracker"
AGE_INDEXES = (
    ("ix_rt_decisions_decided_at", "decisions", "decided_at"),
    ("ix_rt_deliveries_delivered_at", "deliveries", "delivered_at"),
)


def upgrade() -> None:
    op.create_table(
        "campaign_reports",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("frozen_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("daily", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_reports")),
        schema=SCHEMA,
    )
    with op.get_context().autocommit_block():
        for name, table, column in AGE_INDEXES:
            op.create_index(
                name,
                table,
                [column],
                schema=SCHEMA,
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, _ in AGE_INDEXES:
            op.drop_index(name, table, schema=SCHEMA, postgresql_concurrently=True, if_exists=True)
    op.drop_table("campaign_reports", schema=SCHEMA)
