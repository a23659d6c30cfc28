"""The delivery loop's outcomes on PostgreSQL, where a batch's delivered rows are recorded by
one set-based UPDATE (delivery/outcomes.py): the same guards and events as row by row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.chat_agent.delivery.drop_rules import DROP_KIND
from services.chat_agent.delivery.loop import DeliveryLoop, RetryPolicy
from services.chat_agent.delivery.outcomes import Claim
from services.chat_agent.delivery.queue import enqueue
from services.chat_agent.line.client import LineClient, LineResponse
from services.chat_agent.models import Delivery, DropPush, Outbox
from shared.db import make_engine, make_session_factory, unit_of_work, utcnow


def _queue(
    sessions: Callable[[], Session], *, coupon: bool, drop_id: str | None = None
) -> uuid.UUID:
    user = f"U{uuid.uuid4().hex}"
    customer = f"c_{uuid.uuid4().hex[:16]}"
    with unit_of_work(sessions) as session:
        row = enqueue(
            session,
            customer_id=customer,
            line_user_id=user,
            kind=DROP_KIND if drop_id else "greeting",
            messages=[{"type": "text", "text": "こんにちは"}],
            request_id=str(uuid.uuid4()) if coupon else None,
            campaign_id="cmp-1" if coupon else None,
            coupon_code=f"TN-{uuid.uuid4().hex[:10]}" if coupon else None,
            now=utcnow() - timedelta(seconds=1),
        )
        session.flush()
        if drop_id:
            session.add(
                DropPush(
                    drop_id=drop_id,
                    customer_id=customer,
                    delivery_id=row.delivery_id,
                    request_id=row.request_id or "",
                )
            )
        return row.delivery_id


def test_delivered_rows_are_recorded_in_one_statement_with_the_same_guards(
    pg_url: str,
) -> None:
    engine = make_engine(pg_url)
    sessions = make_session_factory(engine)
    drop = str(uuid.uuid4())
    pushed = _queue(sessions, coupon=True, drop_id=drop)
    greeted = _queue(sessions, coupon=False)
    cancelled = _queue(sessions, coupon=True)
    cancelled_refused = _queue(sessions, coupon=True)
    taken_over = _queue(sessions, coupon=True)
    ours = {pushed, greeted, cancelled, cancelled_refused, taken_over}
    loop = DeliveryLoop(sessions, LineClient("http://unused.test", "t"), policy=RetryPolicy())
    claims = _claimed(sessions, ours)
    with unit_of_work(sessions) as session:
        # Meanwhile: two rows are cancelled (their attempts already in flight), another's
        # lease lapsed and a second sender took it.
        session.execute(
            update(Delivery)
            .where(Delivery.delivery_id.in_([cancelled, cancelled_refused]))
            .values(status="cancelled")
        )
        session.execute(
            update(Delivery)
            .where(Delivery.delivery_id == taken_over)
            .values(attempts=Delivery.attempts + 1)
        )
    loop._record_all(
        [
            (c, LineResponse(status=400 if c.delivery_id == cancelled_refused else 200))
            if c.delivery_id in (cancelled, cancelled_refused)
            else (c, LineResponse(status=200, request_id=f"line-{c.delivery_id.hex[:8]}"))
            for c in claims
        ]
    )
    with sessions() as session:
        rows = {
            r.delivery_id: r
            for r in session.scalars(select(Delivery).where(Delivery.delivery_id.in_(ours)))
        }
        events = [
            orjson.loads(o.body)
            for o in session.scalars(
                select(Outbox).where(Outbox.key.in_([rows[i].customer_id for i in ours]))
            )
        ]
    assert rows[pushed].status == "sent" and rows[pushed].channel == "push"
    assert rows[pushed].line_request_id == f"line-{pushed.hex[:8]}"
    assert rows[pushed].sent_at is not None and rows[pushed].last_error is None
    assert rows[greeted].status == "sent"
    # Cancelled while its attempt was in flight: LINE took one, so it was sent (and the
    # drop's counts must say so); the other, refused, stays cancelled.
    assert rows[cancelled].status == "sent"
    assert rows[cancelled_refused].status == "cancelled"
    assert rows[taken_over].status == "pending" and rows[taken_over].sent_at is None
    # Only the coupons actually pushed are announced, each with its drop.
    announced = {e["payload"]["code"]: e for e in events}
    assert set(announced) == {rows[pushed].coupon_code, rows[cancelled].coupon_code}
    assert {e["type"] for e in events} == {"coupon.delivered"}
    delivered = announced[rows[pushed].coupon_code]
    assert delivered["payload"]["drop_id"] == drop and delivered["payload"]["channel"] == "push"
    engine.dispose()


def _claimed(sessions: Callable[[], Session], ids: set[uuid.UUID]) -> list[Claim]:
    """The rows as the loop's claim leaves them: attempt 1, by push."""
    with unit_of_work(sessions) as session:
        session.execute(
            update(Delivery).where(Delivery.delivery_id.in_(ids)).values(attempts=1, channel="push")
        )
        rows = session.scalars(select(Delivery).where(Delivery.delivery_id.in_(ids))).all()
        return [
            Claim(
                delivery_id=r.delivery_id,
                attempt=1,
                channel="push",
                prior_uncertain=False,
                line_user_id=r.line_user_id,
                reply_token=None,
                messages=r.messages,
                retry_key=r.retry_key,
                kind=r.kind,
            )
            for r in rows
        ]
