"""a partial index of each outbox's unsent rows, in id order: the relay's claim reads only
those, however many sent rows the table keeps

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = ("chat_agent", "campaign_engine", "redemption_tracker")
UNSENT = sa.text("sent_at IS NULL")


def upgrade() -> None:
    for schema in SCHEMAS:
        op.create_index(
            f"ix_{schema}_outbox_unsent",
            "outbox",
            ["id"],
            schema=schema,
            postgresql_where=UNSENT,
            sqlite_where=UNSENT,
        )


def downgrade() -> None:
    for schema in SCHEMAS:
        op.drop_index(f"ix_{schema}_outbox_unsent", "outbox", schema=schema)
