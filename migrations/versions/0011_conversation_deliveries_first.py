"""the delivery loop claims conversation messages before a drop's backlog of pushes

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_A_DROP_PUSH = sa.text("kind <> 'drop_coupon'")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_conversation_due",
        "deliveries",
        ["status", "next_attempt_at"],
        schema="chat_agent",
        postgresql_where=NOT_A_DROP_PUSH,
        sqlite_where=NOT_A_DROP_PUSH,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_conversation_due", "deliveries", schema="chat_agent")
