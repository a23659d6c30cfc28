"""A campaign drop's coupons as pushes: once per customer, with a derived retry key, held
until the drop's rules are known, never inside quiet hours, stopped by cancel, capped by
max_messages, and at the channel's rate (the recording server answers 429 past it)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.chat_agent.delivery.rate import PushRate
from services.chat_agent.drops.pushes import push_retry_key
from services.chat_agent.models import Customer
from shared.db import unit_of_work
from shared.events import Envelope, make_event
from shared.ratelimit import RateLimiter
from tenin.line_recorder import PUSH, LineRecorder
from tests.support.line_payloads import user_id
from tests.unit.chat_agent.conftest import Harness, customer_of
from tests.unit.chat_agent.test_delivery import _drain
from tests.unit.chat_agent.test_offers import a_code


def _follower(harness: Harness, *, opted_out: bool = False) -> str:
    user = user_id()
    with unit_of_work(harness.deps.sessions) as session:
        session.add(
            Customer(
                customer_id=customer_of(user),
                line_user_id=user,
                language="ja",
                followed=True,
                opted_out=opted_out,
            )
        )
    return user


def _queued(harness: Harness, drop_id: str, **rules: Any) -> None:
    payload = {"drop_id": drop_id, "campaign_id": "cmp-1", **rules}
    harness.publish(make_event("drop.queued", payload, key="cmp-1", producer="campaign_engine"))


def _decided(
    drop_id: str,
    user: str,
    *,
    coupon: bool = True,
    serial: int = 7,
    utc_offset_minutes: int | None = None,
) -> Envelope:
    now = datetime.now(UTC)
    request_id = str(uuid.uuid5(uuid.UUID(drop_id), customer_of(user)))
    payload = {
        "request_id": request_id,
        "customer_id": customer_of(user),
        "campaign_id": "cmp-1",
        "offer_id": "off-1" if coupon else None,
        "arm": "treatment" if coupon else "holdout",
        "coupon": {
            "code": a_code(serial),
            "title": "Tuna-mayo onigiri",
            "discount": {"type": "amount", "value": 50},
            "valid_from": now.isoformat(),
            "expires_at": (now + timedelta(hours=24)).isoformat(),
            "min_basket": 0,
        }
        if coupon
        else None,
        "propensity": 1.0,
        "score": 0.2 if coupon else None,
        "model_version": "test",
        "reason": None if coupon else "holdout",
        "drop_id": drop_id,
        "utc_offset_minutes": utc_offset_minutes,
    }
    return make_event("offer.decided", payload, key=customer_of(user), producer="campaign_engine")


def _drop() -> str:
    return str(uuid.uuid4())


def test_a_drop_coupon_is_pushed_once_with_a_retry_key_from_its_request(
    harness: Harness, line: LineRecorder
) -> None:
    drop, user = _drop(), _follower(harness)
    _queued(harness, drop)
    decided = _decided(drop, user)
    harness.publish(decided)
    harness.publish(decided)  # redelivered
    harness.publish(_decided(drop, user, serial=8))  # even a second decision for the drop
    _drain(harness.delivery_loop(line), harness)
    [push] = line.delivered_to(user)
    assert push.channel == "push"
    [call] = line.calls(PUSH)
    assert call.retry_key == str(push_retry_key(decided.payload["request_id"]))
    harness.pump()
    [delivered] = harness.events("coupon.delivered", customer_of(user))
    assert delivered.payload["channel"] == "push" and delivered.payload["drop_id"] == drop


def test_holdout_gets_no_message(harness: Harness, line: LineRecorder) -> None:
    drop, user = _drop(), _follower(harness)
    _queued(harness, drop, quiet_hours=None)
    harness.publish(_decided(drop, user, coupon=False))
    _drain(harness.delivery_loop(line), harness)
    assert line.delivered_to(user) == [] and harness.deliveries(customer_of(user)) == []


def test_a_decision_before_its_drop_is_known_waits_for_the_rules(
    harness: Harness, line: LineRecorder
) -> None:
    drop, user = _drop(), _follower(harness)
    harness.publish(_decided(drop, user))
    _drain(harness.delivery_loop(line), harness)
    assert line.delivered_to(user) == []
    _queued(harness, drop, quiet_hours=None)
    _drain(harness.delivery_loop(line), harness)
    assert len(line.delivered_to(user)) == 1


def test_no_push_inside_quiet_hours(harness: Harness, line: LineRecorder) -> None:
    drop, user = _drop(), _follower(harness)
    harness.clock.now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 08:30 in Tokyo
    _queued(harness, drop, quiet_hours={"start": "22:00", "end": "08:00", "timezone": "Asia/Tokyo"})
    harness.clock.now = datetime(2026, 11, 30, 13, 30, tzinfo=UTC)  # 22:30 in Tokyo: quiet
    harness.publish(_decided(drop, user))
    loop = harness.delivery_loop(line)
    assert loop.deliver_once() == 0
    [row] = harness.deliveries(customer_of(user))
    assert row.next_attempt_at == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 08:00 Tokyo
    harness.clock.now = datetime(2026, 11, 30, 22, 59, tzinfo=UTC)
    assert loop.deliver_once() == 0 and line.delivered_to(user) == []
    harness.clock.now = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert loop.deliver_once() == 1 and len(line.delivered_to(user)) == 1


def test_quiet_hours_are_kept_in_the_customers_own_time_where_known(
    harness: Harness, line: LineRecorder
) -> None:
    drop, in_new_york, unknown = _drop(), _follower(harness), _follower(harness)
    harness.clock.now = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # 13:00 Tokyo, 23:00 New York
    _queued(harness, drop, quiet_hours={"start": "22:00", "end": "08:00", "timezone": "Asia/Tokyo"})
    harness.publish(_decided(drop, in_new_york, serial=1, utc_offset_minutes=-300))
    harness.publish(_decided(drop, unknown, serial=2))  # no offset: the drop's zone
    loop = harness.delivery_loop(line)
    assert loop.deliver_once() == 1
    assert line.delivered_to(in_new_york) == [] and len(line.delivered_to(unknown)) == 1
    [row] = harness.deliveries(customer_of(in_new_york))
    assert row.next_attempt_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 08:00 New York
    harness.clock.now = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 22:00 Tokyo: quiet there
    assert loop.deliver_once() == 1 and len(line.delivered_to(in_new_york)) == 1


def test_a_held_push_released_by_its_rules_keeps_the_customers_time(
    harness: Harness, line: LineRecorder
) -> None:
    drop, user = _drop(), _follower(harness)
    harness.clock.now = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # 23:00 New York
    harness.publish(_decided(drop, user, utc_offset_minutes=-300))  # before drop.queued
    _queued(harness, drop, quiet_hours={"start": "22:00", "end": "08:00", "timezone": "Asia/Tokyo"})
    [row] = harness.deliveries(customer_of(user))
    assert row.status == "pending"
    assert row.next_attempt_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def test_cancel_stops_what_is_not_yet_sent(harness: Harness, line: LineRecorder) -> None:
    drop = _drop()
    users = [_follower(harness) for _ in range(3)]
    _queued(harness, drop, quiet_hours=None)
    harness.publish(_decided(drop, users[0], serial=1))
    _drain(harness.delivery_loop(line), harness)
    harness.publish(_decided(drop, users[1], serial=2))
    cancel = {"drop_id": drop, "campaign_id": "cmp-1"}
    harness.publish(make_event("drop.cancelled", cancel, key="cmp-1", producer="campaign_engine"))
    harness.publish(_decided(drop, users[2], serial=3))
    _drain(harness.delivery_loop(line), harness)
    assert [len(line.delivered_to(u)) for u in users] == [1, 0, 0]
    [skipped] = harness.events("coupon.delivery_failed", customer_of(users[2]))
    assert skipped.payload["reason"] == "cancelled"


def test_max_messages_caps_the_pushes_and_reports_the_rest(
    harness: Harness, line: LineRecorder
) -> None:
    drop = _drop()
    users = [_follower(harness) for _ in range(3)] + [_follower(harness, opted_out=True)]
    _queued(harness, drop, quiet_hours=None, max_messages=2)
    for serial, user in enumerate(users):
        harness.publish(_decided(drop, user, serial=serial + 1))
    _drain(harness.delivery_loop(line), harness)
    assert [len(line.delivered_to(u)) for u in users] == [1, 1, 0, 0]
    reasons = [
        e.payload["reason"]
        for u in users[2:]
        for e in harness.events("coupon.delivery_failed", customer_of(u))
    ]
    assert reasons == ["max_messages", "opted_out"]


def test_a_429_with_retry_after_is_honoured(harness: Harness, line: LineRecorder) -> None:
    drop, user = _drop(), _follower(harness)
    _queued(harness, drop, quiet_hours=None)
    harness.publish(_decided(drop, user))
    line.fail(429, times=1, path=PUSH, retry_after=3)
    loop = harness.delivery_loop(line)
    started = harness.clock()
    assert loop.deliver_once() == 1
    [row] = harness.deliveries(customer_of(user))
    assert row.status == "pending" and row.next_attempt_at >= started + timedelta(seconds=3)
    assert loop.deliver_once() == 0  # paused, and not due
    _drain(loop, harness)
    assert len(line.delivered_to(user)) == 1
    assert [c.status for c in line.calls(PUSH)] == [429, 200]


def test_the_recorder_answers_429_past_its_push_rate() -> None:
    with LineRecorder(token="t", push_rate_per_s=5) as line:
        import requests

        answers = [
            requests.post(
                line.base_url + PUSH,
                json={"to": "U1", "messages": []},
                headers={"Authorization": "Bearer t"},
                timeout=5,
            )
            for _ in range(8)
        ]
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert line.rate_limited == statuses.count(429)
    assert len(line.delivered) == statuses.count(200)


def test_the_push_bucket_keeps_to_the_rate() -> None:
    rate = PushRate(RateLimiter(None, f"test-{uuid.uuid4().hex[:6]}"), rate_per_s=50)
    started = time.monotonic()
    for _ in range(60):
        assert rate.acquire(threading.Event())
    elapsed = time.monotonic() - started
    # A burst of 5, then 50 a second: the other 55 take at least 1.1 s.
    assert elapsed >= 1.0


def test_a_reply_is_claimed_before_a_backlog_of_drop_pushes(
    harness: Harness, line: LineRecorder
) -> None:
    """A drop's pushes that fell due earlier never hold back a chat reply: its token would
    lapse behind them and the reply would go out as a push."""
    from services.chat_agent.delivery.drop_rules import DROP_KIND
    from services.chat_agent.delivery.queue import enqueue

    now = harness.clock()
    with unit_of_work(harness.deps.sessions) as session:
        for _ in range(12):
            user = _follower(harness)
            enqueue(
                session,
                customer_id=customer_of(user),
                line_user_id=user,
                kind=DROP_KIND,
                messages=[{"type": "text", "text": "a drop coupon"}],
                now=now - timedelta(minutes=5),
            )
        asker = user_id()
        enqueue(
            session,
            customer_id=customer_of(asker),
            line_user_id=asker,
            kind="reply",
            messages=[{"type": "text", "text": "here is your coupon"}],
            reply_token="token-1",
            reply_deadline=now + timedelta(seconds=50),
            now=now,
        )
    loop = harness.delivery_loop(line)
    loop._batch_size = 4
    claimed = loop._claim()
    assert [c.channel for c in claimed if c.line_user_id == asker] == ["reply"]
    assert len(claimed) == 4  # the rest of the batch is filled with drop pushes
