"""A decision's message is handed to the delivery loop of the same process in memory
(delivery/handoff.py): sent without a claim, and never lost when the loop stops or the
process dies before sending it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from services.chat_agent.delivery.loop import DeliveryLoop
from services.chat_agent.models import Delivery
from tenin.line_recorder import REPLY, LineRecorder
from tests.support.line_payloads import text_event, user_id
from tests.unit.chat_agent.conftest import Harness, customer_of
from tests.unit.chat_agent.test_offers import a_code, decision

LEASE_S = 30.0


def _asked(harness: Harness) -> tuple[str, object]:
    user = user_id()
    harness.send([text_event(user, "coupon please")])
    [request] = harness.events("offer.requested", customer_of(user))
    return user, request


def _handed(harness: Harness, serial: int) -> str:
    """A customer asked; with a loop attached, their coupon's decision arrives (and is
    handed over). Returns the customer's LINE user id."""
    user, request = _asked(harness)
    harness.deps.handoff.attach(threading.Event(), LEASE_S)  # a loop is attached
    harness.publish(decision(request, code=a_code(serial)))  # type: ignore[arg-type]
    return user


def _only_row(harness: Harness, user: str) -> Delivery:
    [row] = harness.deliveries(customer_of(user))
    return row


@contextmanager
def running(loop: DeliveryLoop) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _wait(condition, limit_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_handed_message_is_sent_at_once_without_a_claim(
    harness: Harness, line: LineRecorder
) -> None:
    user, request = _asked(harness)
    # The loop's idle poll is a minute and its bell is its own, not the handlers' kick:
    # only the hand-off can get the coupon out in time.
    options = {"poll_seconds": 60.0, "wake": threading.Event(), "handoff": harness.deps.handoff}
    loop = harness.delivery_loop(line, options=options)
    with running(loop):
        assert _wait(lambda: harness.deps.handoff.lease_s is not None)
        time.sleep(0.1)  # the loop's first look found nothing; it sleeps
        harness.publish(decision(request, code=a_code(21)))  # type: ignore[arg-type]
        assert _wait(lambda: len(line.calls()) == 1), "sent within seconds"
        assert _wait(lambda: _only_row(harness, user).status == "sent")
    row = _only_row(harness, user)
    assert (row.channel, row.attempts) == ("reply", 1), "one attempt, by reply"
    assert [c.path for c in line.calls()] == [REPLY]


def test_written_claimed_the_row_waits_for_no_other_sender(
    harness: Harness, line: LineRecorder
) -> None:
    user = _handed(harness, 22)
    row = _only_row(harness, user)
    assert (row.status, row.attempts, row.channel, row.reply_uncertain) == (
        "pending",
        1,
        "reply",
        True,
    ), "written as a claim would leave it"
    assert row.next_attempt_at > harness.clock(), "leased"
    assert harness.delivery_loop(line).deliver_once() == 0, "no other sender takes it"
    [claim] = harness.deps.handoff.take()
    assert claim.delivery_id == row.delivery_id and claim.attempt == 1


def test_a_stopping_loop_hands_back_what_it_was_handed(
    harness: Harness, line: LineRecorder
) -> None:
    user = _handed(harness, 23)
    handoff = harness.deps.handoff
    stopping = threading.Event()
    stopping.set()
    loop = harness.delivery_loop(line, options={"handoff": handoff})
    loop.run(stopping)  # attaches, stops at once, releases what it was handed
    assert handoff.lease_s is None, "handlers queue plainly again"
    row = _only_row(harness, user)
    assert (row.attempts, row.reply_uncertain) == (0, False), "as if never claimed"
    assert row.next_attempt_at <= harness.clock(), "due now"
    assert harness.delivery_loop(line).deliver_once() == 1
    assert [c.path for c in line.calls()] == [REPLY]


def test_a_process_that_dies_before_sending_leaves_it_to_the_lease(
    harness: Harness, line: LineRecorder
) -> None:
    user = _handed(harness, 24)
    # The process dies: the handed claim is gone with its memory, the row stays.
    harness.clock.advance(LEASE_S + 1)  # the lease lapses, the reply token still holds
    assert harness.delivery_loop(line).deliver_once() == 1
    row = _only_row(harness, user)
    assert (row.status, row.channel, row.attempts) == ("sent", "reply", 2)
    assert [c.path for c in line.calls()] == [REPLY], "delivered once"


def test_a_paused_channel_hands_back_what_it_was_handed(
    harness: Harness, line: LineRecorder
) -> None:
    user = _handed(harness, 25)
    handoff = harness.deps.handoff
    loop = harness.delivery_loop(line, options={"handoff": handoff})
    loop._paused_until = time.monotonic() + 2 * LEASE_S  # a 429's Retry-After, past the lease
    assert loop.deliver_once() == 0 and line.calls() == []
    assert handoff.take() == [], "not kept in memory past its lease"
    row = _only_row(harness, user)
    assert (row.attempts, row.reply_uncertain) == (0, False), "as if never claimed"
    assert row.next_attempt_at > harness.clock() + timedelta(seconds=LEASE_S), "after the pause"
    loop._paused_until = 0.0
    harness.clock.advance(2 * LEASE_S + 1)
    assert loop.deliver_once() == 1
    assert len(line.calls()) == 1 and _only_row(harness, user).status == "sent"


def _waiting(harness: Harness, serial: int) -> str:
    """A customer whose coupon was queued plainly (no loop attached): due, unclaimed."""
    assert harness.deps.handoff.detach() == []
    user, request = _asked(harness)
    harness.publish(decision(request, code=a_code(serial)))  # type: ignore[arg-type]
    return user


def test_hand_offs_alone_skip_the_claim_until_the_poll_interval(
    harness: Harness, line: LineRecorder
) -> None:
    handoff = harness.deps.handoff
    loop = harness.delivery_loop(line, options={"handoff": handoff, "poll_seconds": 60.0})
    first_due, first_handed = _waiting(harness, 26), _handed(harness, 27)
    # The first round claims as well (no claim yet within the interval): both go.
    assert loop.deliver_once() == 2
    assert {_only_row(harness, u).status for u in (first_due, first_handed)} == {"sent"}
    due, handed = _waiting(harness, 28), _handed(harness, 29)
    # Within the interval a round with hand-offs sends them and claims nothing: one
    # transaction less per coupon on the webhook -> coupon path.
    assert loop.deliver_once() == 1
    assert (_only_row(harness, handed).status, _only_row(harness, due).status) == (
        "sent",
        "pending",
    )
    # A round with nothing handed (a kick, or the poll) claims what is due.
    assert loop.deliver_once() == 1
    assert _only_row(harness, due).status == "sent"
