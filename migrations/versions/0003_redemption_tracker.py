"""redemption_tracker tables

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_usage",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("redemptions", sa.BigInteger(), nullable=False),
        sa.Column("discount_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_usage")),
        schema="redemption_tracker",
    )
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("offers", sa.JSON(), nullable=False),
        sa.Column("budget", sa.JSON(), nullable=False),
        sa.Column("holdout_pct", sa.Float(), nullable=False),
        sa.Column("share_basis", sa.String(length=16), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("per_call_fee", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("number", name=op.f("uq_campaigns_number")),
        schema="redemption_tracker",
    )
    op.create_table(
        "customer_links",
        sa.Column("member_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("linked_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_hash", name=op.f("pk_customer_links")),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("customer_links", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redemption_tracker_customer_links_customer_id"),
            ["customer_id"],
            unique=False,
        )

    op.create_table(
        "decisions",
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("offer_id", sa.String(length=64), nullable=True),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("valid_from", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("min_basket", sa.BigInteger(), nullable=True),
        sa.Column("discount", sa.JSON(), nullable=True),
        sa.Column("decided_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("code", name=op.f("uq_decisions_code")),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("decisions", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redemption_tracker_decisions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_rt_decisions_campaign_arm", ["campaign_id", "arm"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_deliveries")),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("deliveries", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redemption_tracker_deliveries_campaign_id"),
            ["campaign_id"],
            unique=False,
        )

    op.create_table(
        "transactions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("member_hash", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("received_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("store_id", "transaction_id", name="uq_rt_transactions_store_tx"),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("transactions", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            "ix_rt_transactions_member_time", ["member_hash", "occurred_at"], unique=False
        )

    op.create_table(
        "coupon_checks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tx_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["tx_id"],
            ["redemption_tracker.transactions.id"],
            name=op.f("fk_coupon_checks_tx_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_checks")),
        sa.UniqueConstraint("tx_id", "position", name="uq_rt_coupon_checks_tx_position"),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("coupon_checks", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            "ix_rt_coupon_checks_campaign_status", ["campaign_id", "status"], unique=False
        )

    op.create_table(
        "redemptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tx_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.String(length=100), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("basket_total", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("voided_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tx_id"],
            ["redemption_tracker.transactions.id"],
            name=op.f("fk_redemptions_tx_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("redemptions", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redemption_tracker_redemptions_campaign_id"),
            ["campaign_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_redemption_tracker_redemptions_tx_id"), ["tx_id"], unique=False
        )
        batch_op.create_index(
            "uq_rt_redemptions_live_code",
            ["code"],
            unique=True,
            postgresql_where=sa.text("voided_at IS NULL"),
            sqlite_where=sa.text("voided_at IS NULL"),
        )

    op.create_table(
        "voids",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tx_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tx_id"],
            ["redemption_tracker.transactions.id"],
            name=op.f("fk_voids_tx_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voids")),
        sa.UniqueConstraint("tx_id", name=op.f("uq_voids_tx_id")),
        schema="redemption_tracker",
    )
    op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column(
            "redemption_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=100), nullable=True),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.BigInteger(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("booked_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["redemption_id"],
            ["redemption_tracker.redemptions.id"],
            name=op.f("fk_ledger_entries_redemption_id_redemptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_ledger_entries_dedupe_key")),
        schema="redemption_tracker",
    )
    with op.batch_alter_table("ledger_entries", schema="redemption_tracker") as batch_op:
        batch_op.create_index(
            "ix_rt_ledger_campaign_period", ["campaign_id", "period"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema="redemption_tracker") as batch_op:
        batch_op.drop_index("ix_rt_ledger_campaign_period")

    op.drop_table("ledger_entries", schema="redemption_tracker")
    op.drop_table("voids", schema="redemption_tracker")
    with op.batch_alter_table("redemptions", schema="redemption_tracker") as batch_op:
        batch_op.drop_index(
            "uq_rt_redemptions_live_code",
            postgresql_where=sa.text("voided_at IS NULL"),
            sqlite_where=sa.text("voided_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_redemption_tracker_redemptions_tx_id"))
        batch_op.drop_index(batch_op.f("ix_redemption_tracker_redemptions_campaign_id"))

    op.drop_table("redemptions", schema="redemption_tracker")
    with op.batch_alter_table("coupon_checks", schema="redemption_tracker") as batch_op:
        batch_op.drop_index("ix_rt_coupon_checks_campaign_status")

    op.drop_table("coupon_checks", schema="redemption_tracker")
    with op.batch_alter_table("transactions", schema="redemption_tracker") as batch_op:
        batch_op.drop_index("ix_rt_transactions_member_time")

    op.drop_table("transactions", schema="redemption_tracker")
    with op.batch_alter_table("deliveries", schema="redemption_tracker") as batch_op:
        batch_op.drop_index(batch_op.f("ix_redemption_tracker_deliveries_campaign_id"))

    op.drop_table("deliveries", schema="redemption_tracker")
    with op.batch_alter_table("decisions", schema="redemption_tracker") as batch_op:
        batch_op.drop_index("ix_rt_decisions_campaign_arm")
        batch_op.drop_index(batch_op.f("ix_redemption_tracker_decisions_customer_id"))

    op.drop_table("decisions", schema="redemption_tracker")
    with op.batch_alter_table("customer_links", schema="redemption_tracker") as batch_op:
        batch_op.drop_index(batch_op.f("ix_redemption_tracker_customer_links_customer_id"))

    op.drop_table("customer_links", schema="redemption_tracker")
    op.drop_table("campaigns", schema="redemption_tracker")
    op.drop_table("campaign_usage", schema="redemption_tracker")
