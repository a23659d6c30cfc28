"""The delivery loop against the recording LINE server: reply vs push, retries, once-only."""

from __future__ import annotations

import time
import uuid

from services.chat_agent.delivery.loop import DeliveryLoop
from services.chat_agent.delivery.queue import enqueue
from services.chat_agent.line.client import parse_retry_after
from services.chat_agent.models import Delivery
from shared.db import unit_of_work
from tenin.line_recorder import PUSH, REPLY, LineRecorder
from tests.support.line_payloads import text_event, user_id
from tests.unit.chat_agent.conftest import Harness, customer_of
from tests.unit.chat_agent.test_offers import a_code, decision


def _row(harness: Harness, delivery_id: uuid.UUID) -> Delivery:
    with harness.deps.sessions() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def _queue(harness: Harness, user: str, *, token: str | None, fresh: bool = True) -> uuid.UUID:
    deadline = harness.clock() if not fresh else None
    with unit_of_work(harness.deps.sessions) as session:
        row = enqueue(
            session,
            customer_id=customer_of(user),
            line_user_id=user,
            kind="reply",
            messages=[{"type": "text", "text": "hi"}],
            reply_token=token,
            reply_deadline=deadline or harness.clock() + _seconds(50),
            now=harness.clock(),
        )
        return row.delivery_id


def _seconds(n: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=n)


def _drain(loop: DeliveryLoop, harness: Harness, rounds: int = 20) -> None:
    """Attempt until nothing is due, jumping the clock over each back-off (but not more)."""
    for _ in range(rounds):
        loop._paused_until = 0.0
        if not loop.deliver_once():
            with harness.deps.sessions() as session:
                pending = [r for r in session.query(Delivery).filter_by(status="pending")]
            if not pending:
                return
            harness.clock.now = max(r.next_attempt_at for r in pending)


def test_a_fresh_reply_token_uses_the_reply_api(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    delivery_id = _queue(harness, user, token="tok-" + uuid.uuid4().hex)
    loop = harness.delivery_loop(line)
    assert loop.deliver_once() == 1
    [call] = line.calls()
    assert call.path == REPLY and call.headers["authorization"] == "Bearer test-token"
    row = _row(harness, delivery_id)
    assert row.status == "sent" and row.channel == "reply"


def test_an_expired_token_pushes_with_a_retry_key(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    delivery_id = _queue(harness, user, token="tok-" + uuid.uuid4().hex, fresh=False)
    harness.delivery_loop(line).deliver_once()
    [call] = line.calls()
    assert call.path == PUSH and call.body["to"] == user
    assert call.retry_key == str(_row(harness, delivery_id).retry_key)
    assert _row(harness, delivery_id).channel == "push"


def test_invalid_reply_token_falls_back_to_push(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    token = "tok-" + uuid.uuid4().hex
    line.expire_reply_token(token)
    delivery_id = _queue(harness, user, token=token)
    _drain(harness.delivery_loop(line), harness)
    assert [c.path for c in line.calls()] == [REPLY, PUSH]
    assert [d.channel for d in line.delivered_to(user)] == ["push"]
    assert _row(harness, delivery_id).status == "sent"


def test_429_and_500_are_retried_without_a_double_delivery(
    harness: Harness, line: LineRecorder
) -> None:
    user = user_id()
    line.fail(429, retry_after=0, path=PUSH)
    line.fail(500, path=PUSH)
    line.fail(503, path=PUSH, deliver=True)  # accepted, but the answer was lost
    delivery_id = _queue(harness, user, token=None)
    _drain(harness.delivery_loop(line), harness)
    statuses = [c.status for c in line.calls()]
    assert statuses == [429, 500, 503, 409]
    keys = {c.retry_key for c in line.calls()}
    assert len(keys) == 1, "every attempt carries the same X-Line-Retry-Key"
    assert len(line.delivered_to(user)) == 1
    row = _row(harness, delivery_id)
    assert row.status == "sent" and row.attempts == 4


def test_retry_after_is_honoured(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    line.fail(429, retry_after=120, path=PUSH)
    delivery_id = _queue(harness, user, token=None)
    loop = harness.delivery_loop(line)
    started = harness.clock()
    loop.deliver_once()
    row = _row(harness, delivery_id)
    assert row.status == "pending"
    assert (row.next_attempt_at - started).total_seconds() >= 120
    assert loop.deliver_once() == 0, "a 429 pauses the whole channel"


def test_400_is_never_retried(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    line.fail(400, path=PUSH, message="The request body has 1 error(s)")
    delivery_id = _queue(harness, user, token=None)
    _drain(harness.delivery_loop(line), harness)
    assert len(line.calls()) == 1
    row = _row(harness, delivery_id)
    assert row.status == "failed" and row.last_error and row.last_error.startswith("400")
    assert line.delivered_to(user) == []


def test_an_uncertain_reply_is_not_delivered_twice(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    token = "tok-" + uuid.uuid4().hex
    line.own_reply_token(token, user)
    line.fail(500, path=REPLY, deliver=True)  # LINE used the token, then answered 500
    delivery_id = _queue(harness, user, token=token)
    loop = harness.delivery_loop(line)
    loop.deliver_once()
    harness.clock.advance(5)  # still inside the token's window
    loop.deliver_once()
    assert [c.status for c in line.calls()] == [500, 400]
    assert len(line.delivered_to(user)) == 1
    assert _row(harness, delivery_id).status == "sent"


def test_a_crash_mid_push_is_retried_with_the_same_key(
    harness: Harness, line: LineRecorder
) -> None:
    user = user_id()
    delivery_id = _queue(harness, user, token=None)
    crashed = harness.delivery_loop(line)
    [claim] = crashed._claim()  # claimed, then the process died before recording
    crashed._send(claim)  # the push reached LINE
    assert _row(harness, delivery_id).status == "pending"
    harness.clock.advance(crashed.policy.lease_s + 1)
    harness.delivery_loop(line).deliver_once()
    assert [c.status for c in line.calls()] == [200, 409]
    assert len(line.delivered_to(user)) == 1
    assert _row(harness, delivery_id).status == "sent"


def test_a_sent_coupon_announces_coupon_delivered(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    harness.send([text_event(user, "coupon please")])
    [request] = harness.events("offer.requested", customer_of(user))
    code = a_code(11)
    harness.publish(decision(request, code=code))
    loop = harness.delivery_loop(line)
    loop.deliver_once()
    harness.pump()
    [delivered] = harness.events("coupon.delivered", customer_of(user))
    assert delivered.payload == {
        "code": code,
        "customer_id": customer_of(user),
        "campaign_id": "cmp-1",
        "request_id": request.payload["request_id"],
        "channel": "reply",
        "drop_id": None,  # not a drop's push
    }


def test_a_late_decision_is_pushed(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    harness.send([text_event(user, "coupon please", ts=int(time.time() * 1000))])
    [request] = harness.events("offer.requested", customer_of(user))
    harness.clock.advance(harness.deps.pacing.reply_window_s + 5)
    harness.publish(decision(request, code=a_code(12)))
    harness.delivery_loop(line).deliver_once()
    assert [c.path for c in line.calls()] == [PUSH]


def test_unfollow_cancels_undelivered_messages(harness: Harness, line: LineRecorder) -> None:
    from tests.support.line_payloads import unfollow_event

    user = user_id()
    harness.send([text_event(user, "hello")])
    harness.send([unfollow_event(user)])
    assert harness.delivery_loop(line).deliver_once() == 0
    assert [d.status for d in harness.deliveries(customer_of(user))] == ["cancelled"]


def test_retry_after_parses_seconds_and_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
