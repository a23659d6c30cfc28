"""the engine's copy of a customer's consent keeps when it last changed, so a request the
chat agent made after an opt-in the engine has not read yet is not refused as opted out

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("consent_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        schema="campaign_engine",
    )


def downgrade() -> None:
    op.drop_column("customers", "consent_at", schema="campaign_engine")
