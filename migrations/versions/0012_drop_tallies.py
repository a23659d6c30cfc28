"""a drop's running counts, so its progress is read without joining its members with
their decisions (O(1) however large the audience)

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "campaign_engine"

# The counts of the drops that exist, from their members and decisions, as the progress
# read them before this revision.
_FROM_DECISIONS = """
SELECT m.drop_id, '{state}', {count}
FROM campaign_engine.drop_members m
JOIN campaign_engine.decisions d ON d.request_id = m.request_id
GROUP BY m.drop_id
"""
_FROM_DELIVERIES = """
SELECT drop_id, '{state}', count(*)
FROM campaign_engine.drop_members WHERE delivery = '{state}'
GROUP BY drop_id
"""
_BACKFILL = [
    _FROM_DECISIONS.format(state="decided", count="count(d.decision_id)"),
    _FROM_DECISIONS.format(state="coupons", count="count(d.coupon_code)"),
    _FROM_DECISIONS.format(
        state="holdout", count="sum(CASE WHEN d.arm = 'holdout' THEN 1 ELSE 0 END)"
    ),
    *(_FROM_DELIVERIES.format(state=state) for state in ("pushed", "failed", "skipped")),
]


def upgrade() -> None:
    op.create_table(
        "drop_tallies",
        sa.Column("drop_id", sa.String(36), primary_key=True),
        sa.Column("state", sa.String(8), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    for select in _BACKFILL:
        op.execute(f"INSERT INTO {SCHEMA}.drop_tallies (drop_id, state, n) {select}")


def downgrade() -> None:
    op.drop_table("drop_tallies", schema=SCHEMA)
