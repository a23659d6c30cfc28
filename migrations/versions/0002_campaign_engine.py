"""campaign_engine tables: campaigns, customers, decisions, coupons, redemptions, exhaustions

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_exhaustions",
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("budget", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "budget", name=op.f("pk_budget_exhaustions")),
        schema="campaign_engine",
    )
    op.create_table(
        "campaigns",
        sa.Column(
            "number",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("utc_offset_minutes", sa.Integer(), nullable=False),
        sa.Column("offers", sa.JSON(), nullable=False),
        sa.Column("budget", sa.JSON(), nullable=False),
        sa.Column("caps", sa.JSON(), nullable=False),
        sa.Column("holdout_pct", sa.Float(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=True),
        sa.Column("revenue_share", sa.JSON(), nullable=False),
        sa.Column("per_call_fee", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("campaign_id", name=op.f("uq_campaigns_campaign_id")),
        schema="campaign_engine",
    )
    with op.batch_alter_table("campaigns", schema="campaign_engine") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_campaigns_status"), ["status"], unique=False
        )

    op.create_table(
        "coupons",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("face_value", sa.Integer(), nullable=False),
        sa.Column("issued_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_coupons")),
        sa.UniqueConstraint("campaign_id", "serial", name="uq_coupons_campaign_serial"),
        schema="campaign_engine",
    )
    with op.batch_alter_table("coupons", schema="campaign_engine") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_coupons_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_coupons_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("opted_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("following", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("linked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("updated_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
        schema="campaign_engine",
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=True),
        sa.Column("offer_id", sa.String(length=64), nullable=True),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("features", sa.Text(), nullable=True),
        sa.Column("coupon_code", sa.String(length=40), nullable=True),
        sa.Column("expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("coupon_code", name=op.f("uq_decisions_coupon_code")),
        sa.UniqueConstraint("request_id", name=op.f("uq_decisions_request_id")),
        schema="campaign_engine",
    )
    with op.batch_alter_table("decisions", schema="campaign_engine") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_decisions_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_decisions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_decisions_decided_at"), ["decided_at"], unique=False
        )

    op.create_table(
        "redemptions_seen",
        sa.Column("coupon_code", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", sa.String(length=100), nullable=False),
        sa.Column("redeemed_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("voided", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("discount", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("coupon_code", "transaction_id", name=op.f("pk_redemptions_seen")),
        schema="campaign_engine",
    )


def downgrade() -> None:
    op.drop_table("redemptions_seen", schema="campaign_engine")
    with op.batch_alter_table("decisions", schema="campaign_engine") as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_engine_decisions_decided_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_engine_decisions_customer_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_engine_decisions_campaign_id"))

    op.drop_table("decisions", schema="campaign_engine")
    op.drop_table("customers", schema="campaign_engine")
    with op.batch_alter_table("coupons", schema="campaign_engine") as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_engine_coupons_customer_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_engine_coupons_campaign_id"))

    op.drop_table("coupons", schema="campaign_engine")
    with op.batch_alter_table("campaigns", schema="campaign_engine") as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_engine_campaigns_status"))

    op.drop_table("campaigns", schema="campaign_engine")
    op.drop_table("budget_exhaustions", schema="campaign_engine")
