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
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, update
from sqlalchemy.orm import Session

from services.chat_agent.delivery.outcomes import AnyRow
from services.chat_agent.models import Delivery, DropPush, DropSchedule
from shared.quiet_hours import next_allowed

DROP_KIND = "drop_coupon"  # the `kind` of a drop push in the deliveries outbox
DELIVERIES = cast(Table, Delivery.__table__)
PUSHES = cast(Table, DropPush.__table__)
SCHEDULES = cast(Table, DropSchedule.__table__)
DROP_RULES = (
    PUSHES.c.utc_offset_minutes,
    SCHEDULES.c.cancelled,
    SCHEDULES.c.quiet_hours,
    SCHEDULES.c.send_after,
)


def with_drop_rules(query: Select[Any]) -> Select[Any]:
    """A claim's query of drop pushes, each row with its drop's rules (`DROP_RULES`; all
    null for a push without a `drop_pushes` row, which no rule holds back)."""
    return (
        query.add_columns(*DROP_RULES)
        .outerjoin(PUSHES, PUSHES.c.delivery_id == DELIVERIES.c.delivery_id)
        .outerjoin(SCHEDULES, SCHEDULES.c.drop_id == PUSHES.c.drop_id)
    )


def defer_drop_pushes(session: Session, rows: Sequence[AnyRow], now: datetime) -> set[object]:
    """Of claimed drop pushes (locked by the caller, read `with_drop_rules`), those that must
    not go now: cancelled ones are cancelled, those inside quiet hours (or before
    send_after) are moved to when they may go. Returns their delivery ids (the loop does
    not attempt them)."""
    cancelled: list[object] = []
    later: list[dict[str, object]] = []
    # A drop's rules are the same for all its pushes: the window is worked out once per
    # (rules, offset), not once per push.
    due_at: dict[tuple[object, ...], datetime] = {}
    for row in rows:
        if row.cancelled is None:
            continue  # no drop_pushes row: no rules to hold it back
        if row.cancelled:
            cancelled.append(row.delivery_id)
            continue
        offset = row.utc_offset_minutes
        rules = (repr(row.quiet_hours), row.send_after, offset)
        due = due_at.get(rules)
        if due is None:
            due = due_at[rules] = next_allowed(
                row.quiet_hours, now, row.send_after, utc_offset_minutes=offset
            )
        if due > now:
            later.append({"b_id": row.delivery_id, "b_due": due})
    if cancelled:
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.delivery_id.in_(cancelled))
            .values(status="cancelled", last_error="drop cancelled")
        )
    if later:
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.delivery_id == bindparam("b_id"))
            .values(next_attempt_at=bindparam("b_due")),
            later,
        )
    return {*cancelled, *(row["b_id"] for row in later)}
