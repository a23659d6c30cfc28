"""foundation: schemas, api keys, outboxes, processed events

Revision ID: 0001
Revises:
Create Date: 2026-11-29 21:50:43.374313
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db
from migrations.helpers import create_schema, drop_schema

SCHEMAS = ("auth", "campaign_engine", "chat_agent", "redemption_tracker")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for schema in SCHEMAS:
        create_schema(schema)
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        schema="auth",
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema="campaign_engine",
    )
    with op.batch_alter_table("outbox", schema="campaign_engine") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_outbox_sent_at"), ["sent_at"], unique=False
        )

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
        schema="campaign_engine",
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema="chat_agent",
    )
    with op.batch_alter_table("outbox", schema="chat_agent") as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_agent_outbox_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
        schema="chat_agent",
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("outbox", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redemption_tracker_outbox_sent_at"), ["sent_at"], unique=False
        )

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
        schema="redemption_tracker",
    )


def downgrade() -> None:
    op.drop_table("processed_events", schema="redemption_tracker")
    with op.batch_alter_table("outbox", schema="redemption_tracker") as batch_op:
        batch_op.drop_index(batch_op.f("ix_redemption_tracker_outbox_sent_at"))

    op.drop_table("outbox", schema="redemption_tracker")
    op.drop_table("processed_events", schema="chat_agent")
    with op.batch_alter_table("outbox", schema="chat_agent") as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_agent_outbox_sent_at"))

    op.drop_table("outbox", schema="chat_agent")
    op.drop_table("processed_events", schema="campaign_engine")
    with op.batch_alter_table("outbox", schema="campaign_engine") as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_engine_outbox_sent_at"))

    op.drop_table("outbox", schema="campaign_engine")
    op.drop_table("api_keys", schema="auth")
    for schema in SCHEMAS:
        drop_schema(schema)
