"""What chat_agent reported about a drop's coupons: `coupon.delivered` (pushed) and
`coupon.delivery_failed` (failed, or skipped: unfollowed, opted out, over
`max_messages`, cancelled), kept on the drop member (docs/interfaces.md § Campaign drops).

The updates group hands over a whole poll of them at once (handlers.py): one transaction
records the event ids not applied before (`ON CONFLICT DO NOTHING … RETURNING`, so a
redelivered event changes nothing) and sets the members' state with one UPDATE per
(drop, state), not one transaction per event: a drop reports as fast as it pushes. The
member keeps one state, so a report about a customer the drop did not ask changes nothing.
The members' states before the update are read (locked) first, so the drop's tallies
(drop_tallies.py) move by what actually changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ARRAY, String, Table, any_, bindparam, select, update
from sqlalchemy.orm import Session

from services.campaign_engine import drop_tallies
from services.campaign_engine.models import UPDATES_CONSUMER, DropMember, ProcessedEvent
from shared.db import DriverStatement, unit_of_work, utcnow
from shared.events import CouponDelivered, CouponDeliveryFailed, Envelope, payload_as
from shared.rows import RowWriter

# coupon.delivery_failed reasons that mean "not sent on purpose", not a platform failure.
SKIP_REASONS = frozenset({"unfollowed", "opted_out", "max_messages", "cancelled"})
_PG_MARK = DriverStatement(
    update(DropMember)
    .where(
        DropMember.drop_id == bindparam("drop_id"),
        DropMember.customer_id == any_(bindparam("customers", type_=ARRAY(String))),
    )
    .values(delivery=bindparam("state")),
    planned_each_time=True,
)
_PG_STATES = DriverStatement(
    select(DropMember.customer_id, DropMember.delivery)
    .where(
        DropMember.drop_id == bindparam("drop_id"),
        DropMember.customer_id == any_(bindparam("customers", type_=ARRAY(String))),
    )
    .order_by(DropMember.customer_id)
    .with_for_update(),
    planned_each_time=True,
)
_PROCESSED = RowWriter(
    cast(Table, ProcessedEvent.__table__),
    ("consumer", "event_id", "processed_at"),
    conflict=("consumer", "event_id"),
    returning="event_id",
)


@dataclass(frozen=True)
class Report:
    """What one event says of one drop member."""

    drop_id: str
    customer_id: str
    state: str  # pushed | failed | skipped


def report_of(envelope: Envelope) -> Report | None:
    """The member state an event reports (None: not about a drop's coupon)."""
    if envelope.type == "coupon.delivered":
        delivered = payload_as(envelope, CouponDelivered)
        drop_id, customer_id, state = delivered.drop_id, delivered.customer_id, "pushed"
    else:
        failed = payload_as(envelope, CouponDeliveryFailed)
        drop_id, customer_id = failed.drop_id, failed.customer_id
        state = "skipped" if failed.reason in SKIP_REASONS else "failed"
    return None if drop_id is None else Report(drop_id, customer_id, state)


def record_drop_delivery(envelope: Envelope, *, sessions: Callable[[], Session]) -> None:
    """One event's report (a batch of one)."""
    record_drop_deliveries([envelope], sessions=sessions)


def record_drop_deliveries(
    envelopes: Sequence[Envelope], *, sessions: Callable[[], Session]
) -> None:
    """Mark the drop members pushed, failed or skipped, for a poll's events at once; other
    deliveries are ignored. Events are applied in order (a later one about the same
    member wins)."""
    reports = [(e, r) for e in envelopes if (r := report_of(e)) is not None]
    if not reports:
        return
    now = utcnow()
    with unit_of_work(sessions) as session:
        conn = session.connection()
        rows = [
            {"consumer": UPDATES_CONSUMER, "event_id": e.event_id, "processed_at": now}
            for e, _ in reports
        ]
        fresh = {str(i) for i in _PROCESSED.write(conn, rows)}
        states: dict[tuple[str, str], str] = {}
        for envelope, report in reports:
            if str(envelope.event_id) in fresh:
                states[(report.drop_id, report.customer_id)] = report.state
        by_drop: dict[str, dict[str, str]] = {}
        for (drop_id, customer_id), state in states.items():
            by_drop.setdefault(drop_id, {})[customer_id] = state
        deltas: Counter[tuple[str, str]] = Counter()
        for drop_id, wanted in sorted(by_drop.items()):
            before = _states_before(session, drop_id, sorted(wanted))
            by_state: dict[str, list[str]] = {}
            for customer_id, old in before.items():
                new = wanted[customer_id]
                if new == old:
                    continue
                by_state.setdefault(new, []).append(customer_id)
                deltas[(drop_id, new)] += 1
                if old is not None:
                    deltas[(drop_id, old)] -= 1
            for state, customers in by_state.items():
                _mark_members(session, drop_id, customers, state)
        drop_tallies.add(session, deltas)


def _states_before(session: Session, drop_id: str, customers: list[str]) -> dict[str, str | None]:
    """The delivery state of each of `customers` who is a member of the drop, locked until
    the caller commits (members the drop never asked are absent)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = _PG_STATES.rows(conn, {"drop_id": drop_id, "customers": customers})
        return {customer_id: state for customer_id, state in rows}
    found = session.execute(
        select(DropMember.customer_id, DropMember.delivery).where(
            DropMember.drop_id == drop_id, DropMember.customer_id.in_(customers)
        )
    )
    return {customer_id: state for customer_id, state in found}


def _mark_members(session: Session, drop_id: str, customers: list[str], state: str) -> None:
    """One UPDATE of the members' delivery state; planned afresh each time on PostgreSQL
    (the members table grows from empty during the drop: shared.db.DriverStatement)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = {"drop_id": drop_id, "customers": customers, "state": state}
        _PG_MARK.rows(conn, params)
        return
    session.execute(
        update(DropMember)
        .where(DropMember.drop_id == drop_id, DropMember.customer_id.in_(customers))
        .values(delivery=state)
    )
