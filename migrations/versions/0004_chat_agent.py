"""chat_agent tables

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "chat_agent"


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaigns")),
        schema=SCHEMA,
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("followed", sa.Boolean(), nullable=False),
        sa.Column("follow_changed_ms", sa.BigInteger(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("consent_changed_ms", sa.BigInteger(), nullable=False),
        sa.Column("member_hash", sa.String(length=64), nullable=True),
        sa.Column("linked_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_event_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
        sa.UniqueConstraint("line_user_id", name=op.f("uq_customers_line_user_id")),
        schema=SCHEMA,
    )
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("reply_token", sa.String(length=255), nullable=True),
        sa.Column("reply_deadline", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retry_key", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("reply_uncertain", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("line_request_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("coupon_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("retry_key", name=op.f("uq_deliveries_retry_key")),
        schema=SCHEMA,
    )
    with op.batch_alter_table("deliveries", schema=SCHEMA) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chat_agent_deliveries_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
    op.create_table(
        "offer_requests",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("reply_token", sa.String(length=255), nullable=True),
        sa.Column("reply_deadline", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("hold_until", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lead_messages", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("coupon_code", sa.String(length=40), nullable=True),
        sa.Column("coupon_title", sa.String(length=200), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_offer_requests")),
        schema=SCHEMA,
    )
    with op.batch_alter_table("offer_requests", schema=SCHEMA) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chat_agent_offer_requests_coupon_code"), ["coupon_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_chat_agent_offer_requests_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_offer_requests_status_hold_until", ["status", "hold_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("offer_requests", schema=SCHEMA) as batch_op:
        batch_op.drop_index("ix_offer_requests_status_hold_until")
        batch_op.drop_index(batch_op.f("ix_chat_agent_offer_requests_customer_id"))
        batch_op.drop_index(batch_op.f("ix_chat_agent_offer_requests_coupon_code"))
    op.drop_table("offer_requests", schema=SCHEMA)
    with op.batch_alter_table("deliveries", schema=SCHEMA) as batch_op:
        batch_op.drop_index("ix_deliveries_status_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_chat_agent_deliveries_customer_id"))
    op.drop_table("deliveries", schema=SCHEMA)
    op.drop_table("customers", schema=SCHEMA)
    op.drop_table("campaigns", schema=SCHEMA)
