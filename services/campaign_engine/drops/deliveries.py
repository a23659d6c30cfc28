"""What chat_agent reported about a drop's coupons: `coupon.delivered` (pushed) and
`coupon.delivery_failed` (failed, or skipped: unfollowed, opted out, over
`max_messages`, cancelled), kept on the drop member (docs/interfaces.md § Campaign drops).

Applied once per event (its id recorded in the same transaction); the member keeps one
state, so a report about a customer the drop did not ask changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.campaign_engine.models import UPDATES_CONSUMER, DropMember, ProcessedEvent
from shared.db import unit_of_work
from shared.events import CouponDelivered, CouponDeliveryFailed, Envelope, payload_as
from shared.idempotency import first_time

# coupon.delivery_failed reasons that mean "not sent on purpose", not a platform failure.
SKIP_REASONS = frozenset({"unfollowed", "opted_out", "max_messages", "cancelled"})


def record_drop_delivery(envelope: Envelope, *, sessions: Callable[[], Session]) -> None:
    """Mark the drop member pushed, failed or skipped; other deliveries are ignored."""
    if envelope.type == "coupon.delivered":
        delivered = payload_as(envelope, CouponDelivered)
        drop_id, customer_id, state = delivered.drop_id, delivered.customer_id, "pushed"
    else:
        failed = payload_as(envelope, CouponDeliveryFailed)
        drop_id, customer_id = failed.drop_id, failed.customer_id
        state = "skipped" if failed.reason in SKIP_REASONS else "failed"
    if drop_id is None:
        return
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, UPDATES_CONSUMER, envelope.event_id):
            return
        session.execute(
            update(DropMember)
            .where(DropMember.drop_id == drop_id, DropMember.customer_id == customer_id)
            .values(delivery=state)
        )
