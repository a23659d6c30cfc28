"""a customer's UTC offset (from their till sales) for a drop's quiet hours in their own time

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("utc_offset_minutes", sa.SmallInteger(), nullable=True),
        schema="campaign_engine",
    )
    op.add_column(
        "drop_pushes",
        sa.Column("utc_offset_minutes", sa.SmallInteger(), nullable=True),
        schema="chat_agent",
    )


def downgrade() -> None:
    op.drop_column("drop_pushes", "utc_offset_minutes", schema="chat_agent")
    op.drop_column("customers", "utc_offset_minutes", schema="campaign_engine")
