"""the delivery loop's indexes hold pending deliveries only: a sent row leaves them, so
recording a push writes fewer index entries and the indexes stay the size of the backlog,
not of the table's history

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
PENDING_NOT_A_DROP_PUSH = sa.text("status = 'pending' AND kind <> 'drop_coupon'")
NOT_A_DROP_PUSH = sa.text("kind <> 'drop_coupon'")


def upgrade() -> None:
    op.drop_index("ix_deliveries_status_next_attempt_at", "deliveries", schema="chat_agent")
    op.drop_index("ix_deliveries_conversation_due", "deliveries", schema="chat_agent")
    _index("ix_deliveries_pending_due", PENDING)
    _index("ix_deliveries_conversation_due", PENDING_NOT_A_DROP_PUSH)


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending_due", "deliveries", schema="chat_agent")
    op.drop_index("ix_deliveries_conversation_due", "deliveries", schema="chat_agent")
    op.create_index(
        "ix_deliveries_status_next_attempt_at",
        "deliveries",
        ["status", "next_attempt_at"],
        schema="chat_agent",
    )
    op.create_index(
        "ix_deliveries_conversation_due",
        "deliveries",
        ["status", "next_attempt_at"],
        schema="chat_agent",
        postgresql_where=NOT_A_DROP_PUSH,
        sqlite_where=NOT_A_DROP_PUSH,
    )


def _index(name: str, where: sa.TextClause) -> None:
    op.create_index(
        name,
        "deliveries",
        ["next_attempt_at"],
        schema="chat_agent",
        postgresql_where=where,
        sqlite_where=where,
    )
