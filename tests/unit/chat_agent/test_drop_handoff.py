"""A drop's push that may go at once is written claimed and handed to the delivery loop of
the same process (drops/pushes.py, delivery/handoff.py): sent without a claim, as many as
the loop has room for, never inside quiet hours, and never lost or pushed twice when the
process dies before sending it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from services.chat_agent.delivery.drop_rules import DROP_KIND
from services.chat_agent.delivery.queue import enqueue
from services.chat_agent.drops.pushes import push_retry_key
from shared.db import unit_of_work
from shared.events import make_event
from tenin.line_recorder import PUSH, REPLY, LineRecorder
from tests.unit.chat_agent.conftest import Harness, customer_of
from tests.unit.chat_agent.test_delivery_handoff import _asked
from tests.unit.chat_agent.test_drop_pushes import _decided, _drop, _follower, _queued
from tests.unit.chat_agent.test_offers import a_code, decision

LEASE_S = 30.0


def _attached(harness: Harness, capacity: int = 256) -> None:
    """A delivery loop is attached to the handlers' hand-off (as in the worker)."""
    harness.deps.handoff.attach(threading.Event(), LEASE_S, capacity=capacity)


def test_pushes_due_now_are_handed_claimed_as_many_as_the_loop_has_room_for(
    harness: Harness, line: LineRecorder
) -> None:
    drop, users = _drop(), [_follower(harness) for _ in range(3)]
    _queued(harness, drop, quiet_hours=None)
    _attached(harness, capacity=2)
    decided = [_decided(drop, user, serial=n + 1) for n, user in enumerate(users)]
    for envelope in decided:
        harness.publish(envelope)
    rows = [harness.deliveries(customer_of(user))[0] for user in users]
    claimed = [(r.attempts, r.channel, r.next_attempt_at > harness.clock()) for r in rows]
    assert claimed == [(1, "push", True), (1, "push", True), (0, None, False)], (
        "the first two written claimed and leased, the third queued plainly (no room)"
    )
    handed = harness.deps.handoff.take()
    assert [c.delivery_id for c in handed] == [r.delivery_id for r in rows[:2]]
    assert [c.retry_key for c in handed] == [
        push_retry_key(e.payload["request_id"]) for e in decided[:2]
    ]
    harness.deps.handoff.hand(*handed)  # give them back for the loop
    loop = harness.delivery_loop(line, options={"handoff": harness.deps.handoff})
    assert loop.deliver_once() == 3, "the two handed, and the third claimed"
    assert [len(line.delivered_to(user)) for user in users] == [1, 1, 1]
    statuses = [(r.status, r.attempts) for u in users for r in harness.deliveries(customer_of(u))]
    assert statuses == [("sent", 1)] * 3
    harness.pump()
    assert all(harness.events("coupon.delivered", customer_of(u)) for u in users)


def test_a_push_inside_quiet_hours_is_not_handed(harness: Harness, line: LineRecorder) -> None:
    drop, user = _drop(), _follower(harness)
    harness.clock.now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 08:30 in Tokyo
    _queued(harness, drop, quiet_hours={"start": "22:00", "end": "08:00", "timezone": "Asia/Tokyo"})
    harness.clock.now = datetime(2026, 11, 30, 13, 30, tzinfo=UTC)  # 22:30 in Tokyo: quiet
    _attached(harness)
    harness.publish(_decided(drop, user))
    assert harness.deps.handoff.take() == []
    [row] = harness.deliveries(customer_of(user))
    assert (row.attempts, row.next_attempt_at) == (0, datetime(2026, 11, 30, 23, 0, tzinfo=UTC))


def test_a_push_before_its_drop_is_known_is_not_handed(harness: Harness) -> None:
    drop, user = _drop(), _follower(harness)
    _attached(harness)
    harness.publish(_decided(drop, user))  # drop.queued has not arrived: held
    assert harness.deps.handoff.take() == []
    [row] = harness.deliveries(customer_of(user))
    assert (row.status, row.attempts) == ("held", 0)


def test_a_handed_push_of_a_process_that_died_is_pushed_once_after_its_lease(
    harness: Harness, line: LineRecorder
) -> None:
    drop, user = _drop(), _follower(harness)
    _queued(harness, drop, quiet_hours=None)
    _attached(harness)
    harness.publish(_decided(drop, user))
    harness.deps.handoff.detach()  # the process dies: what it was handed is gone
    loop = harness.delivery_loop(line)
    assert loop.deliver_once() == 0, "leased: no other sender takes it"
    harness.clock.advance(LEASE_S + 1)
    assert loop.deliver_once() == 1
    [row] = harness.deliveries(customer_of(user))
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(line.calls(PUSH)) == 1 and len(line.delivered_to(user)) == 1


def test_a_handed_reply_goes_before_handed_drop_pushes(
    harness: Harness, line: LineRecorder
) -> None:
    drop, followers = _drop(), [_follower(harness) for _ in range(3)]
    _queued(harness, drop, quiet_hours=None)
    asker, request = _asked(harness)
    _attached(harness)
    for n, user in enumerate(followers):
        harness.publish(_decided(drop, user, serial=n + 1))
    harness.publish(decision(request, code=a_code(9)))  # type: ignore[arg-type]
    handed = harness.deps.handoff.take()
    assert [c.kind == DROP_KIND for c in handed] == [True, True, True, False]
    harness.deps.handoff.hand(*handed)
    loop = harness.delivery_loop(line, options={"handoff": harness.deps.handoff})
    assert loop.deliver_once() == 4
    assert [c.path for c in line.calls()] == [REPLY, PUSH, PUSH, PUSH]


def test_a_push_already_handed_when_its_drop_is_cancelled_goes_out_and_is_counted(
    harness: Harness, line: LineRecorder
) -> None:
    """Cancel stops what is not yet sent; what the delivery loop holds (at most a batch,
    a fraction of a second at the channel's rate) goes out, and is recorded as sent so the
    drop's counts say so."""
    drop, handed_user, waiting_user = _drop(), _follower(harness), _follower(harness)
    _queued(harness, drop, quiet_hours=None)
    _attached(harness, capacity=1)
    harness.publish(_decided(drop, handed_user, serial=1))
    harness.publish(_decided(drop, waiting_user, serial=2))  # no room: queued plainly
    cancel = {"drop_id": drop, "campaign_id": "cmp-1"}
    harness.publish(make_event("drop.cancelled", cancel, key="cmp-1", producer="campaign_engine"))
    loop = harness.delivery_loop(line, options={"handoff": harness.deps.handoff})
    assert loop.deliver_once() == 1, "the handed push; the waiting one is cancelled"
    assert (len(line.delivered_to(handed_user)), line.delivered_to(waiting_user)) == (1, [])
    [sent] = harness.deliveries(customer_of(handed_user))
    [stopped] = harness.deliveries(customer_of(waiting_user))
    assert (sent.status, stopped.status) == ("sent", "cancelled")
    harness.pump()
    [delivered] = harness.events("coupon.delivered", customer_of(handed_user))
    assert delivered.payload["drop_id"] == drop


def test_handed_pushes_leave_room_in_each_round_for_what_must_be_claimed(
    harness: Harness, line: LineRecorder
) -> None:
    """A stream of a drop's handed pushes never starves a conversation message queued the
    ordinary way: a round takes at most three quarters of a batch of handed claims."""
    drop, followers = _drop(), [_follower(harness) for _ in range(5)]
    _queued(harness, drop, quiet_hours=None)
    _attached(harness)
    for n, user in enumerate(followers):
        harness.publish(_decided(drop, user, serial=n + 1))
    greeted = _follower(harness)
    with unit_of_work(harness.deps.sessions) as session:
        enqueue(
            session,
            customer_id=customer_of(greeted),
            line_user_id=greeted,
            kind="greeting",
            messages=[{"type": "text", "text": "いらっしゃいませ"}],
            now=harness.clock(),
        )
    loop = harness.delivery_loop(line, options={"handoff": harness.deps.handoff})
    loop._batch_size = 4  # three handed claims a round, and room to claim one row
    assert loop.deliver_once() == 4
    assert [c.body["to"] for c in line.calls()] == [greeted, *followers[:3]], (
        "the claimed greeting first, then three handed pushes"
    )
    assert loop.deliver_once() == 2, "the handed pushes left over, in the next round"
    assert all(len(line.delivered_to(u)) == 1 for u in followers)
