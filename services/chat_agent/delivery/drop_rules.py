"""What the delivery loop asks before a campaign drop's push goes out, and which drop a
push belongs to (docs/interfaces.md § Campaign drops).

The drop's rules live in chat_agent's `drop_schedules` (kept by drops/schedules.py); the
loop only reads them: a cancelled drop's pushes are cancelled, and a push due inside the
drop's quiet hours (in the customer's own time where their UTC offset is known, else the
drop's zone) or before its send_after is moved to the first instant it may go.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent.models import Delivery, DropPush, DropSchedule
from shared.quiet_hours import next_allowed

DROP_KIND = "drop_coupon"  # the `kind` of a drop push in the deliveries outbox


def defer_drop_pushes(session: Session, rows: Sequence[Delivery], now: datetime) -> set[object]:
    """Of claimed drop pushes, those that must not go now: cancelled ones are cancelled,
    those inside quiet hours (or before send_after) are moved to when they may go.
    Returns their delivery ids (the loop does not attempt them)."""
    ids = [r.delivery_id for r in rows]
    found = session.execute(
        select(DropPush.delivery_id, DropPush.utc_offset_minutes, DropSchedule)
        .join(DropSchedule, DropSchedule.drop_id == DropPush.drop_id)
        .where(DropPush.delivery_id.in_(ids))
    )
    schedules = {delivery_id: (offset, schedule) for delivery_id, offset, schedule in found}
    deferred: set[object] = set()
    for row in rows:
        found_one = schedules.get(row.delivery_id)
        if found_one is None:
            continue
        offset, schedule = found_one
        if schedule.cancelled:
            row.status, row.last_error = "cancelled", "drop cancelled"
            deferred.add(row.delivery_id)
            continue
        due = next_allowed(
            schedule.quiet_hours, now, schedule.send_after, utc_offset_minutes=offset
        )
        if due > now:
            row.next_attempt_at = due
            deferred.add(row.delivery_id)
    return deferred


def drops_of(session: Session, delivery_ids: Sequence[object]) -> dict[object, str]:
    """delivery_id → the drop it pushes for, for those of `delivery_ids` that are drop pushes."""
    if not delivery_ids:
        return {}
    rows = session.execute(
        select(DropPush.delivery_id, DropPush.drop_id).where(DropPush.delivery_id.in_(delivery_ids))
    )
    return {delivery_id: drop_id for delivery_id, drop_id in rows}
