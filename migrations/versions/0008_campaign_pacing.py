"""campaign pacing and message cost (campaign_engine campaigns, redemption_tracker copy)

Campaigns that exist before this revision keep today's behaviour (`asap`): switching a
running campaign to even pacing could stop it mid-window. New campaigns default to
`even` (docs/architecture.md § Budget pacing).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (("campaign_engine", "even"), ("redemption_tracker", "asap"))


def upgrade() -> None:
    for schema, default in TABLES:
        with op.batch_alter_table("campaigns", schema=schema) as batch_op:
            batch_op.add_column(
                sa.Column("message_cost", sa.BigInteger(), server_default="0", nullable=False)
            )
            batch_op.add_column(
                sa.Column("pacing", sa.String(length=8), server_default="asap", nullable=False)
            )
        if default != "asap":
            with op.batch_alter_table("campaigns", schema=schema) as batch_op:
                batch_op.alter_column(
                    "pacing",
                    existing_type=sa.String(length=8),
                    existing_nullable=False,
                    server_default=default,
                )


def downgrade() -> None:
    for schema, _default in TABLES:
        with op.batch_alter_table("campaigns", schema=schema) as batch_op:
            batch_op.drop_column("pacing")
            batch_op.drop_column("message_cost")
