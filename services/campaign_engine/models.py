"""The campaign_engine schema: its tables (one metadata shared with every service)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow
from shared.idempotency import ProcessedEventMixin
from shared.outbox import OutboxMixin, unsent_index

SCHEMA = "campaign_engine"
# The producer named on every event this service writes to its outbox.
PRODUCER = "campaign_engine"
# Consumer names in processed_events (the consumer group ids too, worker.py).
DECISIONS_CONSUMER = "campaign_engine.decisions"
UPDATES_CONSUMER = "campaign_engine.updates"


class Outbox(OutboxMixin, Base):
    __table_args__ = {"schema": SCHEMA}


unsent_index(Outbox)


class ProcessedEvent(ProcessedEventMixin, Base):
    __table_args__ = {"schema": SCHEMA}


class Campaign(Base):
    """A campaign as the marketer defined it; `number` goes into its coupon codes."""

    __tablename__ = "campaigns"
    __table_args__ = {"schema": SCHEMA}

    number: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The UTC offset the marketer wrote starts_at in: the campaign's day for daily caps.
    utc_offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # Offers keep their index (it is inside issued codes) and are withdrawn, never removed.
    offers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    budget: Mapped[dict[str, Any]] = mapped_column(JSON)
    caps: Mapped[dict[str, Any]] = mapped_column(JSON)
    holdout_pct: Mapped[float] = mapped_column(Float)
    audience: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    revenue_share: Mapped[dict[str, Any]] = mapped_column(JSON)
    per_call_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    # Yen per push message; a coupon pushed must earn it back (docs/architecture.md § Decisions).
    message_cost: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # even | asap (docs/architecture.md § Budget pacing); campaigns older than 0008 are asap.
    pacing: Mapped[str] = mapped_column(String(8), default="even", server_default="even")
    # Bumped by every change, so engines know when their cached copy is stale.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Customer(Base):
    """What the engine keeps of a customer from customer.events (consent and linkage)."""

    __tablename__ = "customers"
    __table_args__ = {"schema": SCHEMA}

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When the consent event applied last was made (its occurred_at); None: never changed,
    # or before this was kept. A request asked after it is the chat agent's to vouch for
    # (docs/architecture.md § Consent across topics).
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    following: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    linked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The UTC offset of the customer's latest till sale (sale.recorded): a drop's quiet
    # hours in their own time (docs/interfaces.md § Campaign drops); None: not known.
    utc_offset_minutes: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class Decision(Base):
    """The decision log: every answer to an offer request, coupon or not (read for training)."""

    __tablename__ = "decisions"
    __table_args__ = {"schema": SCHEMA}

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    offer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arm: Mapped[str] = mapped_column(String(16))
    propensity: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str] = mapped_column(String(100))
    # {"candidates": [[N_FEATURES floats], ...], "chosen": i | null}, as computed at decision time.
    features: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why (shared.events NO_COUPON_REASONS, "holdout", or "exploit"/"explore" for a coupon).
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # [{"campaign_id", "offer_id", "score", "ev", "p"}, ...]: every candidate's score, expected
    # value (yen) and probability under the logging policy (the last "p" is no coupon).
    candidates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    coupon_code: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Coupon(Base):
    """An issued coupon: what its reservation took from the budget and caps."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("campaign_id", "serial", name="uq_coupons_campaign_serial"),
        {"schema": SCHEMA},
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(36))
    campaign_id: Mapped[str] = mapped_column(String(36), index=True)
    offer_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    serial: Mapped[int] = mapped_column(Integer)
    face_value: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RedemptionSeen(Base):
    """Redemptions reported by the tracker (coupon.redeemed), marked voided by coupon.voided."""

    __tablename__ = "redemptions_seen"
    __table_args__ = {"schema": SCHEMA}

    coupon_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voided: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    discount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class BudgetExhaustion(Base):
    """One row per budget announced exhausted, so campaign.budget_exhausted goes out once."""

    __tablename__ = "budget_exhaustions"
    __table_args__ = {"schema": SCHEMA}

    campaign_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    budget: Mapped[str] = mapped_column(String(32), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerSale(Base):
    """sale.recorded amounts per linked customer with time: spend outcomes for treated and holdout."""

    __tablename__ = "customer_sales"
    __table_args__ = {"schema": SCHEMA}

    transaction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ModelVersion(Base):
    """The model registry: every trained version of a kind and its card (modeling/registry.py)."""

    __tablename__ = "model_versions"
    __table_args__ = {"schema": SCHEMA}

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # candidate | serving | retired
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelPromotion(Base):
    """Every promotion, rollback and refusal: who, when, why, and the estimates it rested on."""

    __tablename__ = "model_promotions"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(16), index=True)
    from_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    to_version: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback | refuse
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    estimates: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Drop(Base):
    """A campaign drop: an active campaign offered to a whole audience at once.

    The drop runner (drops/runner.py) pages through eligible followers in `customer_id`
    order from `cursor`, holding the row by a lease (`lease_owner`, `lease_until`), so a
    killed runner's drop is resumed by another (docs/interfaces.md § Campaign drops).
    """

    __tablename__ = "drops"
    __table_args__ = {"schema": SCHEMA}

    drop_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), index=True)
    # queued → running → paged (every member asked) | cancelled | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    audience: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    max_messages: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    send_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cursor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    members: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DropMember(Base):
    """One follower a drop asked a decision for, under a request id derived from both.

    `delivery` is what chat_agent reported (coupon.delivered → "pushed",
    coupon.delivery_failed → "failed"); decided/coupon/holdout come from the decision
    with the same request_id.
    """

    __tablename__ = "drop_members"
    __table_args__ = {"schema": SCHEMA}

    drop_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), unique=True)
    delivery: Mapped[str | None] = mapped_column(String(8), nullable=True)


class DropTally(Base):
    """One of a drop's running counts (`state`: decided, coupons, holdout, pushed, failed,
    skipped), kept in the transactions that change it (drop_tallies.py), so its progress
    is read in one short query however large the audience. Followers asked are
    `Drop.members`."""

    __tablename__ = "drop_tallies"
    __table_args__ = {"schema": SCHEMA}

    drop_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(8), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
