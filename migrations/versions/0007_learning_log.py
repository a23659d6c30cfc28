"""campaign_engine learning log: decision reasons and candidates, customer sales, model registry

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "campaign_engine"


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=SCHEMA) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("candidates", sa.JSON(), nullable=True))
    op.create_table(
        "customer_sales",
        sa.Column("transaction_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_customer_sales")),
        schema=SCHEMA,
    )
    with op.batch_alter_table("customer_sales", schema=SCHEMA) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_customer_sales_customer_id"),
            ["customer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_customer_sales_occurred_at"),
            ["occurred_at"],
            unique=False,
        )
    op.create_table(
        "model_versions",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "version", name=op.f("pk_model_versions")),
        schema=SCHEMA,
    )
    op.create_table(
        "model_promotions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_version", sa.String(length=100), nullable=True),
        sa.Column("to_version", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("estimates", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_promotions")),
        schema=SCHEMA,
    )
    with op.batch_alter_table("model_promotions", schema=SCHEMA) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_engine_model_promotions_kind"), ["kind"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("model_promotions", schema=SCHEMA) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_engine_model_promotions_kind"))
    op.drop_table("model_promotions", schema=SCHEMA)
    op.drop_table("model_versions", schema=SCHEMA)
    with op.batch_alter_table("customer_sales", schema=SCHEMA) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_engine_customer_sales_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_engine_customer_sales_customer_id"))
    op.drop_table("customer_sales", schema=SCHEMA)
    with op.batch_alter_table("decisions", schema=SCHEMA) as batch_op:
        batch_op.drop_column("candidates")
        batch_op.drop_column("reason")
