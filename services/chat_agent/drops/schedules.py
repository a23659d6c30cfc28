"""chat_agent's copy of each campaign drop's sending rules, kept from `drop.queued` and
`drop.cancelled` (docs/interfaces.md § Campaign drops), and what the delivery loop asks
of it before a drop push goes out.

A drop's decisions (offer.decisions) and its rules (campaign.events) travel on different
topics, so either may arrive first: a decision for a drop not yet known creates an
unknown schedule and its push waits "held" until `drop.queued` releases it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.chat_agent.models import Delivery, DropPush, DropSchedule, ProcessedEvent
from shared.db import unit_of_work
from shared.events import DropCancelled, DropQueued, Envelope, payload_as
from shared.idempotency import first_time
from shared.quiet_hours import next_allowed

DROPS_CONSUMER = "chat_agent.campaigns"  # drop events ride campaign.events


def schedule_for_update(session: Session, drop_id: str) -> DropSchedule:
    """The drop's schedule, locked; an unknown one is created (rules still to come)."""
    row = session.get(DropSchedule, drop_id, with_for_update=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(DropSchedule(drop_id=drop_id, known=False, cancelled=False, queued=0))
    except IntegrityError:
        pass  # a concurrent handler created it first
    row = session.get(DropSchedule, drop_id, with_for_update=True, populate_existing=True)
    assert row is not None
    return row


def record_drop_queued(
    envelope: Envelope, *, sessions: Callable[[], Session], clock: Callable[[], datetime]
) -> None:
    """Keep the drop's rules and release the pushes that waited for them."""
    queued = payload_as(envelope, DropQueued)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, DROPS_CONSUMER, envelope.event_id):
            return
        row = schedule_for_update(session, queued.drop_id)
        row.known = True
        row.max_messages = queued.max_messages
        row.send_after = queued.send_after
        row.quiet_hours = queued.quiet_hours.model_dump() if queued.quiet_hours else None
        held = session.execute(
            select(Delivery, DropPush.utc_offset_minutes)
            .join(DropPush, DropPush.delivery_id == Delivery.delivery_id)
            .where(DropPush.drop_id == queued.drop_id, Delivery.status == "held")
            .order_by(Delivery.created_at)
            .with_for_update()
        ).all()
        now = clock()
        for i, (delivery, offset) in enumerate(held):
            over = row.max_messages is not None and row.queued - len(held) + i >= row.max_messages
            delivery.status = "cancelled" if over else "pending"
            delivery.next_attempt_at = next_allowed(
                row.quiet_hours, now, row.send_after, utc_offset_minutes=offset
            )
            if over:
                delivery.last_error = "over the drop's max_messages"


def record_drop_cancelled(envelope: Envelope, *, sessions: Callable[[], Session]) -> None:
    """Cancel the drop: its pushes not yet sent are not sent, and none are queued after."""
    cancelled = payload_as(envelope, DropCancelled)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, DROPS_CONSUMER, envelope.event_id):
            return
        row = schedule_for_update(session, cancelled.drop_id)
        row.cancelled = True
        pushes = select(DropPush.delivery_id).where(DropPush.drop_id == cancelled.drop_id)
        session.execute(
            update(Delivery)
            .where(Delivery.delivery_id.in_(pushes), Delivery.status.in_(("pending", "held")))
            .values(status="cancelled", last_error="drop cancelled")
        )
