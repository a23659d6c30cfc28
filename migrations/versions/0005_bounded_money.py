"""bounded money: 64-bit money columns in campaign_engine; late redemptions, expired codes

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENGINE = "campaign_engine"
TRACKER = "redemption_tracker"
# (table, column): every money column of the engine that was 32-bit.
MONEY_COLUMNS = (
    ("campaigns", "per_call_fee"),
    ("coupons", "face_value"),
    ("redemptions_seen", "discount"),
)


def upgrade() -> None:
    for table, column in MONEY_COLUMNS:
        with op.batch_alter_table(table, schema=ENGINE) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
            )
    with op.batch_alter_table("redemptions", schema=TRACKER) as batch_op:
        batch_op.add_column(
            sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "expired_codes",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("refused_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_expired_codes")),
        schema=TRACKER,
    )


def downgrade() -> None:
    op.drop_table("expired_codes", schema=TRACKER)
    with op.batch_alter_table("redemptions", schema=TRACKER) as batch_op:
        batch_op.drop_column("late")
    for table, column in reversed(MONEY_COLUMNS):
        with op.batch_alter_table(table, schema=ENGINE) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
            )
