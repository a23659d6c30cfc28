"""The chat_agent schema: its tables (one metadata shared with every service).

Raw LINE user ids live only here (`customers`, `deliveries`): they are needed to push
messages, and never leave chat_agent in events or logs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    SmallInteger,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow
from shared.idempotency import ProcessedEventMixin
from shared.ids import random_uuid
from shared.outbox import OutboxMixin, unsent_index

SCHEMA = "chat_agent"
# The `producer` of every event this service writes to its outbox or publishes.
PRODUCER = "chat_agent"


class Outbox(OutboxMixin, Base):
    __table_args__ = {"schema": SCHEMA}


unsent_index(Outbox)


class ProcessedEvent(ProcessedEventMixin, Base):
    __table_args__ = {"schema": SCHEMA}


class Customer(Base):
    """A LINE user as a customer: identity, follow state, consent and loyalty link.

    The `*_ms` columns hold the LINE timestamp of the event that last changed that
    piece of state, so an event arriving late never overwrites a newer decision.
    """

    __tablename__ = "customers"
    __table_args__ = {"schema": SCHEMA}

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="ja")
    followed: Mapped[bool] = mapped_column(Boolean, default=True)
    follow_changed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # The first follow ever (kept across unfollow and re-follow: "new follower" means new),
    # and the last follow that asked for an offer (a re-follow soon after asks for none).
    first_followed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    follow_offered_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_changed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # One customer per member: a verified link moves the member (docs/interfaces.md
    # § Account link).
    member_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_event_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LinkRequest(Base):
    """One account-link attempt: the platform's link token, then the member site's nonce.

    Only SHA-256 digests of the token and the nonce are kept (both are bearer secrets),
    and the member only as its keyed hash. The nonce is bound to the customer the link
    token was issued to, used once, and valid for `NONCE_TTL` (docs/interfaces.md
    § Account link).
    """

    __tablename__ = "link_requests"
    __table_args__ = {"schema": SCHEMA}

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    token_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    nonce_digest: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    member_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    nonce_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # "pending" → "nonce_issued" → "linked" | "failed"
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OfferRequest(Base):
    """An `offer.requested` this service published, waiting for its decision.

    The reply token of the message that asked is kept here so the decision can be
    answered with the (free) reply API while the token is fresh. `lead_messages` are
    persona messages held back to go out together with the offer (a follow greeting);
    if no decision comes by `hold_until` they are sent on their own.
    """

    __tablename__ = "offer_requests"
    __table_args__ = (
        Index("ix_offer_requests_status_hold_until", "status", "hold_until"),
        # Retention deletes the oldest first (TENIN_OFFER_REQUEST_RETENTION_DAYS).
        Index("ix_offer_requests_created_at", "created_at"),
        {"schema": SCHEMA},
    )

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    reply_token: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reply_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lead_messages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # The coupon it brought, to thank the customer by name of offer once it is redeemed.
    coupon_code: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    coupon_title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# A delivery that will not be attempted again: sent, failed for good, or cancelled. SQL
# text, so PostgreSQL matches a query's condition to the partial index's (literals).
FINISHED_WHERE = "status IN ('sent', 'failed', 'cancelled')"


class Delivery(Base):
    """One batch of LINE messages to deliver: the outbox of outgoing chat messages.

    Written in the transaction that decided to send it; the delivery loop sends it with
    the reply API while `reply_deadline` holds, else by push with `retry_key` as
    `X-Line-Retry-Key`, so a retried push is delivered once.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # Pending rows only (a sent row leaves them): the delivery loop's claims.
        Index(
            "ix_deliveries_pending_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # Finished rows by age: what retention deletes, oldest first (shared/retention.py).
        Index(
            "ix_deliveries_finished_created_at",
            "created_at",
            postgresql_where=text(FINISHED_WHERE),
            sqlite_where=text(FINISHED_WHERE),
        ),
        # The delivery loop claims conversation messages first, past any drop backlog.
        Index(
            "ix_deliveries_conversation_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending' AND kind <> 'drop_coupon'"),
            sqlite_where=text("status = 'pending' AND kind <> 'drop_coupon'"),
        ),
        {"schema": SCHEMA},
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=random_uuid)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    line_user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reply_token: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reply_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_key: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=random_uuid)
    channel: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # A reply attempt whose outcome is unknown (5xx, timeout, crash mid-call): LINE may
    # have used the token, so a later "Invalid reply token" means "already delivered".
    reply_uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    line_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    coupon_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Campaign(Base):
    """chat_agent's own copy of campaign status, from `campaign.events`."""

    __tablename__ = "campaigns"
    __table_args__ = {"schema": SCHEMA}

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DropSchedule(Base):
    """chat_agent's copy of a campaign drop's sending rules, from `drop.queued` /
    `drop.cancelled` (docs/interfaces.md § Campaign drops).

    `queued` counts the pushes enqueued for it, so `max_messages` caps them; a row created
    by a decision that arrived before its `drop.queued` has `known` false and holds its
    pushes until the rules arrive.
    """

    __tablename__ = "drop_schedules"
    __table_args__ = {"schema": SCHEMA}

    drop_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    known: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    max_messages: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    send_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    queued: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DropPush(Base):
    """The one push a drop may send a customer: the primary key makes a second impossible."""

    __tablename__ = "drop_pushes"
    __table_args__ = {"schema": SCHEMA}

    drop_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    request_id: Mapped[str] = mapped_column(String(64))
    # The customer's UTC offset, when campaign_engine knows it: quiet hours in their time.
    utc_offset_minutes: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
