"""chat_agent's offer requests get an index on created_at, so the relay can prune those
older than TENIN_OFFER_REQUEST_RETENTION_DAYS oldest first, a batch at a time
(shared/retention.py)

Built CONCURRENTLY on PostgreSQL: the table may be large and the webhook keeps writing it.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_offer_requests_created_at",
            "offer_requests",
            ["created_at"],
            schema="chat_agent",
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_offer_requests_created_at",
            "offer_requests",
            schema="chat_agent",
            postgresql_concurrently=True,
            if_exists=True,
        )
