"""A drop's decided coupon goes out as one push (docs/interfaces.md § Campaign drops).

A push that may go at once (its drop's rules known, outside quiet hours) is written
already claimed and handed to this process's delivery loop in memory, while the loop has
room (delivery/handoff.py): no claim transaction per push. The rest wait in the outbox
for the loop's claim, which applies the drop's rules again.

Holdout and no-coupon decisions send nothing. A coupon is queued in the deliveries
outbox with a retry key derived from its request, so whatever crashes, LINE delivers it
once; `drop_pushes` (one row per drop and customer) makes a second push to the same
customer impossible. Coupons not pushed on purpose (unfollowed, opted out, cancelled,
over `max_messages`) are reported with `coupon.delivery_failed`, so the drop's counts add up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from services.chat_agent.delivery import queue
from services.chat_agent.delivery.drop_rules import DROP_KIND
from services.chat_agent.delivery.handoff import Handoff, claim_row
from services.chat_agent.delivery.outcomes import AnyRow, Claim
from services.chat_agent.drops.schedules import schedule_for_update
from services.chat_agent.line import messages
from services.chat_agent.models import (
    PRODUCER,
    Customer,
    Delivery,
    DropPush,
    DropSchedule,
    Outbox,
    ProcessedEvent,
)
from services.chat_agent.offers.decisions import OFFERS_CONSUMER
from services.chat_agent.persona import Persona
from shared.db import unit_of_work
from shared.events import CouponDeliveryFailed, Envelope, IssuedCoupon, OfferDecided, payload_as
from shared.outbox import Draft, outbox_rows, outbox_writer
from shared.quiet_hours import next_allowed
from shared.rows import RowWriter, any_of

log = structlog.get_logger(__name__)

# X-Line-Retry-Key of a drop push: uuid5 of its request id under this namespace.
RETRY_KEY_NAMESPACE = uuid.UUID("5d1f3c9e-8f4b-4c1e-9a57-2f0d6b1e7c42")
DELIVERY_TABLE = cast(Table, Delivery.__table__)
PUSH_TABLE = cast(Table, DropPush.__table__)
PROCESSED_TABLE = cast(Table, ProcessedEvent.__table__)
# One statement per table for a poll's rows (shared/rows.py: an executemany of the same
# rows was ~30% of the chat worker's CPU during a drop).
PROCESSED_ROWS = RowWriter(
    PROCESSED_TABLE,
    ("consumer", "event_id", "processed_at"),
    conflict=("consumer", "event_id"),
    returning="event_id",
)
# With `channel`: a push handed to the delivery loop is written claimed (delivery/handoff).
DELIVERY_ROWS = RowWriter(DELIVERY_TABLE, (*queue.DELIVERY_COLUMNS, "channel"))
PUSH_ROWS = RowWriter(
    PUSH_TABLE, ("drop_id", "customer_id", "delivery_id", "request_id", "utc_offset_minutes")
)
# What a push needs of a customer: read as plain columns, not ORM objects.
CUSTOMERS = cast(Table, Customer.__table__)
CUSTOMER_COLUMNS = (
    CUSTOMERS.c.customer_id,
    CUSTOMERS.c.line_user_id,
    CUSTOMERS.c.language,
    CUSTOMERS.c.followed,
    CUSTOMERS.c.opted_out,
)


def push_retry_key(request_id: str) -> uuid.UUID:
    """The push's retry key: the same for the same request, in any process, after any crash."""
    return uuid.uuid5(RETRY_KEY_NAMESPACE, request_id)


def deliver_drop_decision(envelope: Envelope, **deps: Any) -> None:
    """Queue the push of one drop's coupon (a batch of one)."""
    deliver_drop_decisions([envelope], **deps)


def deliver_drop_decisions(
    envelopes: Sequence[Envelope],
    *,
    sessions: Callable[[], Session],
    persona: Persona,
    public_base_url: str,
    clock: Callable[[], datetime],
    kick: Callable[[], None],
    handoff: Handoff | None = None,
    grown: Callable[[int], None] | None = None,
) -> None:
    """Queue the pushes of drops' coupons (or report why not), all in one transaction,
    with a handful of statements for the whole batch; those that may go now are handed
    to the delivery loop after the commit, as many as it has room for (`handoff`).
    `grown` is told how many pushes it queued, after the commit (shared/table_stats.py)."""
    now = clock()
    with unit_of_work(sessions) as session:
        decisions = _first_time(session, envelopes, now)
        batch = _Batch.load(session, decisions)
        if handoff is not None and handoff.lease_s is not None:
            batch.lease_s, batch.room = handoff.lease_s, handoff.room()
        queued = [_queue_push(batch, d, persona, public_base_url, now) for d in decisions]
        # One INSERT per table for the whole poll (the ORM's unit of work, then an
        # executemany, cost more CPU per push than building the messages).
        DELIVERY_ROWS.write(session.connection(), batch.deliveries)
        PUSH_ROWS.write(session.connection(), batch.pushes)
        outbox_writer(Outbox).write(
            session.connection(), outbox_rows(batch.not_pushed, PRODUCER, now)
        )
    if batch.handed and handoff is not None:
        handoff.hand(*batch.handed)
    if any(queued) and len(batch.handed) < sum(queued):
        kick()  # some wait in the outbox for the loop's claim
    if grown is not None and batch.pushes:
        grown(len(batch.pushes))


def _first_time(
    session: Session, envelopes: Sequence[Envelope], now: datetime
) -> list[OfferDecided]:
    """The decisions of the events not applied before, each now recorded as applied (one
    INSERT … ON CONFLICT DO NOTHING RETURNING for the poll: an event another transaction
    recorded first is skipped, after waiting for it to commit)."""
    unique = list({e.event_id: e for e in envelopes}.values())
    rows = [
        {"consumer": OFFERS_CONSUMER, "event_id": e.event_id, "processed_at": now} for e in unique
    ]
    fresh = set(PROCESSED_ROWS.write(session.connection(), rows))
    return [payload_as(e, OfferDecided) for e in unique if e.event_id in fresh]


@dataclass
class _Batch:
    """What a batch of drop decisions reads once: schedules (locked), customers, pushes."""

    schedules: dict[str, DropSchedule]
    customers: dict[str, AnyRow]  # what a push needs of each customer (CUSTOMER_COLUMNS)
    pushed: set[tuple[str, str]]
    # What the batch queues: deliveries and drop_pushes rows, and the reports of coupons
    # not pushed (coupon.delivery_failed), inserted at its end.
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    not_pushed: list[Draft] = field(default_factory=list)
    # Pushes written claimed, to hand to the delivery loop after the commit: up to `room`
    # of them, leased for `lease_s` (no loop attached: none).
    handed: list[Claim] = field(default_factory=list)
    lease_s: float = 0.0
    room: int = 0
    # The same for every push of a language (and a coupon's expiry): worked out once.
    _quick: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _expiries: dict[tuple[datetime, str], str] = field(default_factory=dict)

    def quick_replies(self, persona: Persona, language: str) -> list[dict[str, Any]]:
        """The persona's quick-reply buttons in `language` (a drop pushes only to customers
        who have not opted out)."""
        if language not in self._quick:
            items = messages.quick_reply_items(persona.quick_replies(language), opted_out=False)
            self._quick[language] = items
        return self._quick[language]

    def expiry(self, expires_at: datetime, language: str) -> str:
        """The coupon's expiry as a customer of `language` reads it."""
        key = (expires_at, language)
        if key not in self._expiries:
            self._expiries[key] = messages.format_expiry(expires_at, language)
        return self._expiries[key]

    @classmethod
    def load(cls, session: Session, decisions: list[OfferDecided]) -> _Batch:
        with_coupon = [d for d in decisions if d.coupon is not None and d.drop_id is not None]
        drops = sorted({d.drop_id for d in with_coupon if d.drop_id})
        ids = list({d.customer_id for d in with_coupon})
        if not ids:
            return cls({}, {}, set())
        # Core columns of the tables, each list one array parameter (shared/rows.any_of).
        customers = session.execute(
            select(*CUSTOMER_COLUMNS).where(any_of(session, CUSTOMERS.c.customer_id, ids))
        )
        pushed = session.execute(
            select(PUSH_TABLE.c.drop_id, PUSH_TABLE.c.customer_id).where(
                any_of(session, PUSH_TABLE.c.drop_id, drops),
                any_of(session, PUSH_TABLE.c.customer_id, ids),
            )
        )
        return cls(
            {drop_id: schedule_for_update(session, drop_id) for drop_id in drops},
            {c.customer_id: c for c in customers},
            {(drop_id, customer_id) for drop_id, customer_id in pushed},
        )


def _queue_push(
    batch: _Batch,
    decision: OfferDecided,
    persona: Persona,
    public_base_url: str,
    now: datetime,
) -> bool:
    """Queue one decision's push in `batch` (or its report, if it is not pushed); True if it
    may go now."""
    coupon, drop_id = decision.coupon, decision.drop_id
    if coupon is None or drop_id is None or decision.campaign_id is None:
        return False  # holdout or no coupon: a drop sends no message
    schedule = batch.schedules[drop_id]
    if (drop_id, decision.customer_id) in batch.pushed:
        return False  # this drop already has the customer's push
    customer = batch.customers.get(decision.customer_id)
    reason = _not_pushed(schedule.cancelled, customer, schedule.max_messages, schedule.queued)
    if reason is not None or customer is None:
        batch.not_pushed.append(_not_pushed_report(decision, coupon, reason or "unfollowed"))
        return False
    language = customer.language
    pitch = persona.line(
        "offer_pitch",
        language,
        "neutral",
        decision.request_id,
        title=coupon.title,
        expires=batch.expiry(coupon.expires_at, language),
        code=coupon.code,
    )
    delivery = queue.delivery_row(
        customer_id=customer.customer_id,
        line_user_id=customer.line_user_id,
        kind=DROP_KIND,
        messages=messages.with_quick_replies(
            messages.coupon_messages(pitch, coupon, language, public_base_url),
            batch.quick_replies(persona, language),
        ),
        request_id=decision.request_id,
        campaign_id=decision.campaign_id,
        coupon_code=coupon.code,
        now=now,
        retry_key=push_retry_key(decision.request_id),
        not_before=next_allowed(
            schedule.quiet_hours,
            now,
            schedule.send_after,
            utc_offset_minutes=decision.utc_offset_minutes,  # the customer's own time
        ),
        status="pending" if schedule.known else "held",
    )
    due_now = delivery["status"] == "pending" and delivery["next_attempt_at"] <= now
    if due_now and len(batch.handed) < batch.room:  # and the delivery loop has room
        batch.handed.append(claim_row(delivery, batch.lease_s))
    batch.deliveries.append({"channel": None, **delivery})
    batch.pushes.append(
        {
            "drop_id": drop_id,
            "customer_id": customer.customer_id,
            "delivery_id": delivery["delivery_id"],
            "request_id": decision.request_id,
            "utc_offset_minutes": decision.utc_offset_minutes,
        }
    )
    schedule.queued += 1
    batch.pushed.add((drop_id, customer.customer_id))
    return schedule.known


def _not_pushed(
    cancelled: bool, customer: AnyRow | None, max_messages: int | None, queued: int
) -> str | None:
    """Why this coupon is not pushed (None: push it)."""
    if cancelled:
        return "cancelled"
    if customer is None or not customer.followed:
        return "unfollowed"
    if customer.opted_out:
        return "opted_out"
    if max_messages is not None and queued >= max_messages:
        return "max_messages"
    return None


def _not_pushed_report(decision: OfferDecided, coupon: IssuedCoupon, reason: str) -> Draft:
    """The `coupon.delivery_failed` that reports a coupon not pushed on purpose."""
    assert decision.campaign_id is not None and decision.drop_id is not None
    log.info("drop_push_skipped", customer_id=decision.customer_id, reason=reason)
    report = CouponDeliveryFailed(
        code=coupon.code,
        customer_id=decision.customer_id,
        campaign_id=decision.campaign_id,
        request_id=decision.request_id,
        drop_id=decision.drop_id,
        reason=reason,
    )
    return Draft("coupon.delivery_failed", decision.customer_id, report.model_dump(mode="json"))
