"""chat_agent: verified account links (link requests, one customer per member), first follow

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "chat_agent"


def upgrade() -> None:
    op.create_table(
        "link_requests",
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("token_expires_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("nonce_digest", sa.String(length=64), nullable=True),
        sa.Column("member_hash", sa.String(length=64), nullable=True),
        sa.Column("nonce_expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_link_requests")),
        sa.UniqueConstraint("nonce_digest", name=op.f("uq_link_requests_nonce_digest")),
        schema=SCHEMA,
    )
    with op.batch_alter_table("link_requests", schema=SCHEMA) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chat_agent_link_requests_customer_id"), ["customer_id"], unique=False
        )
    with op.batch_alter_table("customers", schema=SCHEMA) as batch_op:
        batch_op.add_column(sa.Column("first_followed_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("follow_offered_ms", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_customers_member_hash"), ["member_hash"])
    # Customers who followed before this revision: their last follow is the best known.
    op.execute(
        sa.text(
            f"UPDATE {SCHEMA}.customers SET first_followed_ms = follow_changed_ms "
            "WHERE followed AND follow_changed_ms > 0"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=SCHEMA) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_customers_member_hash"), type_="unique")
        batch_op.drop_column("follow_offered_ms")
        batch_op.drop_column("first_followed_ms")
    with op.batch_alter_table("link_requests", schema=SCHEMA) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_agent_link_requests_customer_id"))
    op.drop_table("link_requests", schema=SCHEMA)
