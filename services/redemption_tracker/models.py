"""The redemption_tracker schema: its tables (one metadata shared with every service).

What the tracker owns: POS transactions, the coupon checks made on them, redemptions,
voids, the append-only revenue-share ledger and the final reports of ended campaigns. What
it copies from other services' events: campaigns, decisions (issued coupons and experiment
arms), deliveries and customer links. Exactly-once rules live in constraints here, not in
application code:

- `transactions (store_id, transaction_id)` is unique: a re-sent transaction is a duplicate;
- `redemptions.code` is unique among rows not voided: one live redemption per code;
- `voids.tx_id` is unique: a transaction is voided once;
- `ledger_entries.dedupe_key` is unique: one entry per redemption, per void, per period close;
- `campaign_reports.campaign_id` is the key: a campaign's report is frozen once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow
from shared.idempotency import ProcessedEventMixin
from shared.outbox import OutboxMixin, unsent_index

SCHEMA = "redemption_tracker"

# BIGINT on Postgres; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")


class TrackerTable(Base):
    """A table in the tracker's schema (a class with indexes restates the schema with them)."""

    __abstract__ = True
    __table_args__: Any = {"schema": SCHEMA}


class Outbox(OutboxMixin, TrackerTable):
    """The tracker's outbox (shared.outbox)."""


unsent_index(Outbox)


class ProcessedEvent(ProcessedEventMixin, TrackerTable):
    """Events the tracker's consumers applied (shared.idempotency)."""


# --- copies of other services' data -----------------------------------------------------


class Campaign(TrackerTable):
    """The tracker's copy of a campaign, from `campaign.*` snapshots."""

    __tablename__ = "campaigns"

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    budget: Mapped[dict[str, Any]] = mapped_column(JSON)
    holdout_pct: Mapped[float] = mapped_column(Float)
    share_basis: Mapped[str] = mapped_column(String(16))
    share_bp: Mapped[int] = mapped_column(Integer)  # revenue share in basis points
    per_call_fee: Mapped[int] = mapped_column(BigInteger)
    message_cost: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    pacing: Mapped[str] = mapped_column(String(8), default="asap", server_default="asap")
    snapshot_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignUsage(TrackerTable):
    """Live redemption counters, locked per batch so budgets hold under races."""

    __tablename__ = "campaign_usage"

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    redemptions: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)


class Decision(TrackerTable):
    """An `offer.decided` as the tracker needs it: the arm and the coupon issued."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_rt_decisions_campaign_arm", "campaign_id", "arm"),
        # Rows of final reports are pruned oldest first (reports/final.py).
        Index("ix_rt_decisions_decided_at", "decided_at"),
        {"schema": SCHEMA},
    )

    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    offer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arm: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    min_basket: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    discount: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(TrackerTable):
    """A `coupon.delivered`: the coupon message reached the messaging platform."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # Rows of final reports are pruned oldest first (reports/final.py).
        Index("ix_rt_deliveries_delivered_at", "delivered_at"),
        {"schema": SCHEMA},
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerLink(TrackerTable):
    """Which customer a loyalty member (by keyed hash only) is."""

    __tablename__ = "customer_links"

    member_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- what the tracker owns --------------------------------------------------------------


class Transaction(TrackerTable):
    """Every accepted POS transaction, with or without coupons (the lift baseline)."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("store_id", "transaction_id", name="uq_rt_transactions_store_tx"),
        Index("ix_rt_transactions_member_time", "member_hash", "occurred_at"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    member_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponCheck(TrackerTable):
    """The outcome of one coupon presented on one transaction (what a re-send returns)."""

    __tablename__ = "coupon_checks"
    __table_args__ = (
        UniqueConstraint("tx_id", "position", name="uq_rt_coupon_checks_tx_position"),
        Index("ix_rt_coupon_checks_campaign_status", "campaign_id", "status"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tx_id: Mapped[int] = mapped_column(ForeignKey(f"{SCHEMA}.transactions.id"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    discount: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Redemption(TrackerTable):
    """A coupon redeemed on a transaction; `voided_at` frees the code again."""

    __tablename__ = "redemptions"
    __table_args__ = (
        # The race guard: at most one live (not voided) redemption per code.
        Index(
            "uq_rt_redemptions_live_code",
            "code",
            unique=True,
            postgresql_where=text("voided_at IS NULL"),
            sqlite_where=text("voided_at IS NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tx_id: Mapped[int] = mapped_column(ForeignKey(f"{SCHEMA}.transactions.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    offer_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    store_id: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(100))
    discount: Mapped[int] = mapped_column(BigInteger)
    basket_total: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Reported later than the till clock skew allows (an offline till, or backdated).
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExpiredCode(TrackerTable):
    """A code the tracker has refused as `expired`: evidence no later, backdated sale beats."""

    __tablename__ = "expired_codes"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)  # canonical form
    refused_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Void(TrackerTable):
    """A voided transaction: its redemptions are reversed and its spend no longer counts."""

    __tablename__ = "voids"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tx_id: Mapped[int] = mapped_column(ForeignKey(f"{SCHEMA}.transactions.id"), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(TrackerTable):
    """Append-only money record; statements and reports are sums over it."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_rt_ledger_campaign_period", "campaign_id", "period"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))  # redemption | void | period_close
    redemption_id: Mapped[int | None] = mapped_column(
        ForeignKey(f"{SCHEMA}.redemptions.id"), nullable=True
    )
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    revenue: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    share: Mapped[int] = mapped_column(BigInteger)
    basis: Mapped[str] = mapped_column(String(16))
    share_bp: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM, statement time zone
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignReport(TrackerTable):
    """A campaign's final report, frozen once its statements are final (reports/final.py)
    and served from then on instead of the live one."""

    __tablename__ = "campaign_reports"

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the JSON and CSV serve
    daily: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the page's chart
