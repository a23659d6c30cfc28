"""outbox rows carry their event's type, which the relay sends as the record's `type`
header so a consumer passes over types it does not apply without decoding them (rows
written before have none and are sent without the header)

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = ("campaign_engine", "chat_agent", "redemption_tracker")


def upgrade() -> None:
    # A nullable column without a default: PostgreSQL adds it without rewriting the table.
    for schema in SCHEMAS:
        op.add_column(
            "outbox", sa.Column("event_type", sa.String(length=100), nullable=True), schema=schema
        )


def downgrade() -> None:
    for schema in SCHEMAS:
        with op.batch_alter_table("outbox", schema=schema) as batch_op:
            batch_op.drop_column("event_type")
