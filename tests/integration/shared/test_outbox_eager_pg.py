"""On PostgreSQL, handlers publishing their own rows (shared/outbox_eager.py) and relays
claiming the same table at the same time publish every row exactly once; a claim awaiting
its ack holds its rows until it is settled, and one that never is (its process died) is
published again by a relay.

Four writer threads commit through one `EagerPublisher` (their relay is this process's),
each settling its last claim when it is done; a second relay, standing for another worker
process of the service (its own lock), claims the same table all the while with a 1 ms
poll, and this process's relay runs too. SKIP LOCKED and the in-process claim lock are all
that keep them apart.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from services.chat_agent.models import Outbox
from shared.bus import InMemoryBroker
from shared.consumer import ConsumerLoop
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events import Envelope, decode
from shared.outbox_eager import EagerPublisher
from shared.outbox_relay import OutboxRelay
from tests.unit.shared.test_outbox_eager import add_opted_in

WRITERS, EACH = 4, 40


def test_eager_handlers_and_two_relays_publish_each_row_once(pg_url: str) -> None:
    topic = f"eager.{uuid.uuid4().hex[:8]}"
    broker = InMemoryBroker()
    sessions = make_session_factory(make_engine(pg_url, pre_ping=False, pool_size=8))
    here = OutboxRelay(sessions, Outbox, broker.producer(), poll_seconds=0.05)
    elsewhere = OutboxRelay(sessions, Outbox, broker.producer(), poll_seconds=0.001)
    while here.relay_once():  # rows other tests left behind
        pass
    stop = threading.Event()
    relays = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in (here, elsewhere)]
    written: list[str] = []

    def write(customer_id: str) -> None:
        with unit_of_work(sessions) as session:
            envelope = add_opted_in(session, topic, customer_id)
        written.append(str(envelope.event_id))

    handle = EagerPublisher(write, here)

    def writer(n: int) -> None:
        for i in range(EACH):
            handle(f"c_{n}_{i}", settle_later=i % 2 == 0)  # half of them pipelined
        handle.settle()

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in relays + writers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    stop.set()
    for t in relays:
        t.join(timeout=10)

    published = Counter(str(decode(m.value).event_id) for m in broker.messages(topic))
    assert len(written) == WRITERS * EACH
    assert set(published) == set(written), "every committed row was published"
    assert max(published.values()) == 1, "and none twice"
    with sessions() as session:
        unsent = session.scalar(
            select(func.count()).where(Outbox.topic == topic, Outbox.sent_at.is_(None))
        )
    assert unsent == 0


def _unsent(sessions, topic: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count()).where(Outbox.topic == topic, Outbox.sent_at.is_(None))
            )
            or 0
        )


@dataclass
class Scene:
    """A topic of the test's own, the in-memory bus, and a relay with nothing left to send."""

    topic: str
    broker: InMemoryBroker
    sessions: Any
    relay: OutboxRelay

    def another_relay(self) -> OutboxRelay:
        """Another process's relay of the same outbox (its own lock)."""
        return OutboxRelay(self.sessions, Outbox, self.broker.producer())

    def write(self, customer_id: str) -> Envelope:
        with unit_of_work(self.sessions) as session:
            return add_opted_in(session, self.topic, customer_id)

    def unsent(self) -> int:
        return _unsent(self.sessions, self.topic)


@pytest.fixture
def scene(pg_url: str) -> Scene:
    sessions = make_session_factory(make_engine(pg_url, pre_ping=False))
    broker = InMemoryBroker()
    relay = OutboxRelay(sessions, Outbox, broker.producer())
    while relay.relay_once():  # rows other tests left behind
        pass
    return Scene(f"eager.{uuid.uuid4().hex[:8]}", broker, sessions, relay)


def test_a_claim_is_on_the_wire_at_once_and_marked_when_settled(scene: Scene) -> None:
    handle = EagerPublisher(scene.write, scene.relay)
    handle("c_a", settle_later=True)
    assert [m.key for m in scene.broker.messages(scene.topic)] == ["c_a"], "sent on return"
    assert scene.unsent() == 1, "not yet marked: its ack is awaited later"
    assert scene.another_relay().relay_once() == 0, "its claim holds the row: no other takes it"
    handle("c_b", settle_later=True)
    assert [m.key for m in scene.broker.messages(scene.topic)] == ["c_a", "c_b"]
    assert scene.unsent() == 1, "the first is marked as the second is claimed"
    assert handle.settle() == 1
    assert scene.unsent() == 0
    assert handle.settle() == 0, "nothing left in hand"
    handle("c_c")
    assert scene.unsent() == 0, "without settle_later: acknowledged and marked at once"


def test_a_claim_never_settled_is_published_again_by_a_relay(scene: Scene) -> None:
    envelope = scene.write("c_z")
    claimed = scene.relay.send_committed()
    assert claimed is not None and claimed.on_postgresql
    # The process dies before the ack: the server rolls its open transaction back.
    claimed.transaction.rollback()
    claimed.session.close()
    assert scene.unsent() == 1
    assert scene.another_relay().relay_once() == 1
    published = [decode(m.value).event_id for m in scene.broker.messages(scene.topic)]
    assert published == [envelope.event_id] * 2, "again: a duplicate consumers drop by event_id"
    assert scene.unsent() == 0


def test_a_consumer_loop_settles_a_full_poll_later_and_any_other_at_once(scene: Scene) -> None:
    source = f"asks.{uuid.uuid4().hex[:6]}"
    loop: ConsumerLoop[str] = ConsumerLoop(
        scene.broker,
        "eager-pg-test",
        [source],
        scene.write,
        decoder=lambda message: message.value.decode(),
        publish_eagerly=scene.relay,
        batch_size=2,
    )
    never = threading.Event()

    def asked(*customers: str) -> int:
        for customer_id in customers:
            scene.broker.append(source, customer_id, customer_id.encode(), ())
        return loop.run_once(never, timeout_ms=0)

    assert asked("c_1", "c_2") == 2  # a full poll: a backlog
    assert len(scene.broker.messages(scene.topic)) == 2 and scene.unsent() == 2, "in hand"
    assert asked() == 0
    assert scene.unsent() == 0, "an empty poll settles them"
    assert asked("c_3") == 1
    assert scene.unsent() == 0, "a poll that is not full is settled at once"
    assert asked("c_4", "c_5") == 2
    assert scene.unsent() == 2
    loop.close()
    assert scene.unsent() == 0, "closing settles what is in hand"
    published = sorted(m.key or "" for m in scene.broker.messages(scene.topic))
    assert published == [f"c_{i}" for i in range(1, 6)]
