"""The delivery loop's batch sender (delivery/curl.py) against the recording LINE server,
and the worker's loop driving it: the same calls and answers as `LineClient`, many at once."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.chat_agent.delivery.curl import CurlSender
from services.chat_agent.delivery.loop import DeliveryLoop, RetryPolicy
from services.chat_agent.delivery.outcomes import Claim
from services.chat_agent.delivery.queue import enqueue
from services.chat_agent.models import Delivery
from shared.db import unit_of_work
from tenin.line_recorder import PUSH, REPLY, LineRecorder
from tests.unit.chat_agent.conftest import Harness, customer_of

MESSAGES = [{"type": "text", "text": "クーポンです"}]


def _claim(channel: str = "push", **fields: object) -> Claim:
    values: dict[str, object] = {
        "delivery_id": uuid.uuid4(),
        "attempt": 1,
        "channel": channel,
        "prior_uncertain": False,
        "line_user_id": f"U{uuid.uuid4().hex}",
        "reply_token": "token-1" if channel == "reply" else None,
        "messages": MESSAGES,
        "retry_key": uuid.uuid4(),
        "kind": "drop_coupon",
        **fields,
    }
    return Claim(**values)  # type: ignore[arg-type]  # the test's own field values


def _now(claim: Claim) -> float:
    return 0.0


def test_a_batch_goes_out_at_once_with_tokens_and_retry_keys() -> None:
    claims = [_claim() for _ in range(12)]
    with LineRecorder(token="t", latency_s=0.2) as line:
        sender = CurlSender(line.base_url, "t", in_flight=12)
        attempts = sender.send_all(claims, _now)
        sender.close()
    assert sorted(a.status for _, a in attempts) == [200] * 12
    assert {c.line_user_id for c, _ in attempts} == {c.line_user_id for c in claims}
    # Each call takes the server 0.2 s; they were answered many at a time, not one by one
    # (counted by the server, not timed: a loaded machine slows a clock, not this count).
    assert line.most_in_flight >= 6
    keys = {c.line_user_id: str(c.retry_key) for c in claims}
    assert {r.body["to"]: r.retry_key for r in line.calls(PUSH)} == keys
    assert all(d.messages == MESSAGES for d in line.delivered)


def test_answers_carry_status_message_retry_after_and_accepted_id() -> None:
    key = uuid.uuid4()
    with LineRecorder(token="t") as line:
        sender = CurlSender(line.base_url, "t", in_flight=2)
        [(_, first)] = sender.send_all([_claim(retry_key=key)], _now)
        [(_, again)] = sender.send_all([_claim(retry_key=key)], _now)
        line.fail(429, times=1, path=PUSH, retry_after=3)
        [(_, limited)] = sender.send_all([_claim()], _now)
        [(_, replied)] = sender.send_all([_claim("reply")], _now)
        [(_, used)] = sender.send_all([_claim("reply")], _now)
        sender.close()
        wrong = CurlSender(line.base_url, "wrong", in_flight=1)
        [(_, refused)] = wrong.send_all([_claim()], _now)
        wrong.close()
    assert first.ok and first.request_id
    assert again.status == 409 and again.accepted_request_id == first.request_id
    assert limited.status == 429 and limited.retry_after_s == 3 and limited.retryable
    assert replied.ok and [c.body["replyToken"] for c in line.calls(REPLY)][0] == "token-1"
    assert used.status == 400 and used.invalid_reply_token
    assert refused.status == 401 and refused.message == "Authentication failed"


def test_ready_paces_and_turns_away_attempts() -> None:
    asked: list[Claim] = []
    claims = [_claim() for _ in range(3)]

    def ready(claim: Claim) -> float | None:
        asked.append(claim)
        if claim is claims[1]:
            return None  # handed back by the loop (a 429 paused the channel)
        return 0.05 if asked.count(claim) == 1 else 0.0  # a token after a short wait

    with LineRecorder(token="t") as line:
        sender = CurlSender(line.base_url, "t", in_flight=4)
        attempts = sender.send_all(claims, ready)
        sender.close()
    # Attempts come back as they complete, so compare without order.
    assert sorted(str(c.delivery_id) for c, _ in attempts) == sorted(
        str(c.delivery_id) for c in (claims[0], claims[2])
    )
    assert len(line.delivered) == 2 and asked.count(claims[0]) == 2


def test_a_batch_that_fails_leaves_nothing_behind_for_the_next() -> None:
    first, second = _claim(), _claim()

    def failing(claim: Claim) -> float | None:
        if claim is second:
            raise RuntimeError("the bucket's store broke")
        return 0.0

    with LineRecorder(token="t", latency_s=0.1) as line:
        sender = CurlSender(line.base_url, "t", in_flight=4)
        with pytest.raises(RuntimeError):
            sender.send_all([first, second], failing)
        later = _claim()
        attempts = sender.send_all([later], _now)
        sender.close()
    # Only the new batch's attempt comes back (the failed batch's claims stay leased).
    assert [c for c, _ in attempts] == [later] and attempts[0][1].ok


def test_no_answer_is_status_0_and_a_server_that_drops_connections_is_survived() -> None:
    with _dropping_server() as base:
        sender = CurlSender(base, "t", in_flight=2, timeout_s=2)
        attempts = sender.send_all([_claim(), _claim("reply")], _now)
        sender.close()
    assert [a.status for _, a in attempts] == [0, 0]
    assert all(a.retryable and a.message.startswith("curl error") for _, a in attempts)


def test_the_workers_loop_sends_and_records_a_batch_through_it(
    harness: Harness, line: LineRecorder
) -> None:
    users = [f"U{uuid.uuid4().hex}" for _ in range(5)]
    with unit_of_work(harness.deps.sessions) as session:
        for user in users:
            enqueue(
                session,
                customer_id=customer_of(user),
                line_user_id=user,
                kind="greeting",
                messages=MESSAGES,
                now=harness.clock(),
            )
    loop = DeliveryLoop(
        harness.deps.sessions,
        None,
        sender=CurlSender(line.base_url, "test-token", in_flight=8),
        policy=RetryPolicy(base_backoff_s=0.0),
        clock=harness.clock,
    )
    assert loop.deliver_once() == 5
    assert all(len(line.delivered_to(u)) == 1 for u in users)
    with harness.deps.sessions() as session:
        rows = session.query(Delivery).filter(Delivery.line_user_id.in_(users)).all()
    assert {r.status for r in rows} == {"sent"} and all(r.line_request_id for r in rows)


@contextmanager
def _dropping_server() -> Iterator[str]:
    """Accepts connections, reads what comes, and closes them without an answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
