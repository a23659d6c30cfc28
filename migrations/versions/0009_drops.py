"""campaign drops: drops and their members (campaign_engine), drop schedules and pushes (chat_agent)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CE = "campaign_engine"
CA = "chat_agent"


def upgrade() -> None:
    op.create_table(
        "drops",
        sa.Column("drop_id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=True),
        sa.Column("max_messages", sa.BigInteger(), nullable=True),
        sa.Column("send_after", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quiet_hours", sa.JSON(), nullable=True),
        sa.Column("cursor", sa.String(length=64), nullable=True),
        sa.Column("members", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paged_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("drop_id", name=op.f("pk_drops")),
        schema=CE,
    )
    with op.batch_alter_table("drops", schema=CE) as batch_op:
        for column in ("campaign_id", "status", "created_at"):
            batch_op.create_index(batch_op.f(f"ix_{CE}_drops_{column}"), [column], unique=False)
    op.create_table(
        "drop_members",
        sa.Column("drop_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("delivery", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("drop_id", "customer_id", name=op.f("pk_drop_members")),
        sa.UniqueConstraint("request_id", name=op.f("uq_drop_members_request_id")),
        schema=CE,
    )
    op.create_table(
        "drop_schedules",
        sa.Column("drop_id", sa.String(length=36), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("max_messages", sa.BigInteger(), nullable=True),
        sa.Column("send_after", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quiet_hours", sa.JSON(), nullable=True),
        sa.Column("queued", sa.BigInteger(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("drop_id", name=op.f("pk_drop_schedules")),
        schema=CA,
    )
    op.create_table(
        "drop_pushes",
        sa.Column("drop_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("drop_id", "customer_id", name=op.f("pk_drop_pushes")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_drop_pushes_delivery_id")),
        schema=CA,
    )


def downgrade() -> None:
    op.drop_table("drop_pushes", schema=CA)
    op.drop_table("drop_schedules", schema=CA)
    op.drop_table("drop_members", schema=CE)
    with op.batch_alter_table("drops", schema=CE) as batch_op:
        for column in ("created_at", "status", "campaign_id"):
            batch_op.drop_index(batch_op.f(f"ix_{CE}_drops_{column}"))
    op.drop_table("drops", schema=CE)
