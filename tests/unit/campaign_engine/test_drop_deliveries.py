"""A drop's delivery reports through the updates group's batch handler: a whole poll in one
transaction, each event applied once, other events of the poll handled as before."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.handlers import update_batches, update_handlers
from services.campaign_engine.models import Customer, DropMember, ProcessedEvent
from shared.db import unit_of_work
from shared.events import CouponDelivered, CouponDeliveryFailed, Envelope, make_event
from tests.unit.campaign_engine.fakes import FakeFeatures, FakeMarkers

DROP = str(uuid.uuid4())


def _members(sessions: Callable[[], Session], n: int) -> list[str]:
    ids = [f"c_{i}" for i in range(n)]
    with unit_of_work(sessions) as session:
        for cid in ids:
            session.add(DropMember(drop_id=DROP, customer_id=cid, request_id=f"r_{cid}"))
    return ids


def _report(customer_id: str, *, reason: str | None = None, drop_id: str | None = DROP) -> Envelope:
    fields: dict[str, Any] = {
        "code": f"TN-{customer_id}",
        "customer_id": customer_id,
        "campaign_id": "camp",
        "request_id": f"r_{customer_id}",
        "drop_id": drop_id,
    }
    if reason is None:
        return make_event(
            "coupon.delivered", CouponDelivered(channel="push", **fields), key="k", producer="t"
        )
    payload = CouponDeliveryFailed(reason=reason, **fields)
    return make_event("coupon.delivery_failed", payload, key="k", producer="t")


def _states(sessions: Callable[[], Session]) -> dict[str, str | None]:
    with sessions() as session:
        rows = session.execute(select(DropMember.customer_id, DropMember.delivery)).all()
    return dict(rows)


def _handler(
    sessions: Callable[[], Session], features: FakeFeatures, markers: FakeMarkers
) -> Callable[[list[Envelope]], None]:
    registry = update_handlers(
        sessions=sessions,
        reservations=InMemoryReservations(),
        features=features,
        markers=markers,
    )
    return update_batches(registry, sessions)


def test_a_poll_of_reports_is_recorded_once_each_with_the_other_events_handled(
    sessions: Callable[[], Session], features: FakeFeatures, markers: FakeMarkers
) -> None:
    c = _members(sessions, 5)
    handle = _handler(sessions, features, markers)
    pushed = _report(c[0])
    followed = make_event("customer.followed", {"customer_id": "c_new"}, key="k", producer="t")
    poll = [
        pushed,
        pushed,  # redelivered inside the same poll
        _report(c[1]),
        followed,
        _report(c[2], reason="500 upstream"),
        _report(c[3], reason="opted_out"),
        _report("not_a_member"),
        _report(c[4], drop_id=None),  # a chat coupon, not a drop's
    ]
    handle(poll)
    assert _states(sessions) == {
        c[0]: "pushed",
        c[1]: "pushed",
        c[2]: "failed",
        c[3]: "skipped",
        c[4]: None,
    }
    with sessions() as session:
        assert session.get(Customer, "c_new") is not None  # the poll's other event applied
        processed = session.scalar(select(func.count()).select_from(ProcessedEvent))
    # pushed (once), c1, c2, c3, the non-member's report and the follow; none for drop_id=None.
    assert processed == 6


def test_a_report_redelivered_in_a_later_poll_changes_nothing(
    sessions: Callable[[], Session], features: FakeFeatures, markers: FakeMarkers
) -> None:
    (member,) = _members(sessions, 1)
    handle = _handler(sessions, features, markers)
    first = _report(member, reason="500 upstream")
    handle([first])
    # The member's state is changed by a later report; the first one, delivered again,
    # must not be applied a second time.
    handle([_report(member)])
    handle([first])
    assert _states(sessions) == {member: "pushed"}
