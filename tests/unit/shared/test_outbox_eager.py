"""A handler wrapped by an `EagerPublisher` publishes what it committed itself, at once,
and leaves to the relay only what it cannot (shared/outbox_eager.py).

SQLite and the in-memory bus; the relay's thread is not running here, so whatever reaches
the bus was published by the handler's own thread. On SQLite the ack is awaited and the
rows marked before the handler returns (PostgreSQL pipelines it:
tests/integration/shared/test_outbox_eager_pg.py).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent.models import Outbox
from shared.bus import InMemoryBroker
from shared.consumer import ConsumerLoop
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events import Envelope
from shared.outbox import add_event
from shared.outbox_eager import EagerPublisher
from shared.outbox_relay import OutboxRelay
from shared.outbox_wake import Wakeup

NEVER = threading.Event()


@pytest.fixture
def sessions(sqlite_url: str):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(sqlite_url))


class FlakyProducer:
    """The in-memory bus, whose broker fails the first `failures` flushes."""

    def __init__(self, broker: InMemoryBroker, failures: int) -> None:
        self._inner = broker.producer()
        self._queued: list[tuple[str, str | None, bytes]] = []
        self.failures = failures

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        self._queued.append((topic, key, value))

    def flush(self, timeout: float | None = None) -> None:
        queued, self._queued = self._queued, []
        if self.failures:
            self.failures -= 1
            raise TimeoutError("no ack from the broker")
        for topic, key, value in queued:
            self._inner.send(topic, key, value)

    def close(self) -> None:
        return None


def add_opted_in(session: Session, topic: str, customer_id: str) -> Envelope:
    """An outbox row on `topic` in the caller's transaction."""
    return add_event(
        session,
        Outbox,
        "customer.opted_in",
        {"customer_id": customer_id},
        key=customer_id,
        producer="test",
        topic=topic,
    )


def _writer(sessions, topic: str):  # type: ignore[no-untyped-def]
    def handle(customer_id: str) -> None:
        with unit_of_work(sessions) as session:
            add_opted_in(session, topic, customer_id)

    return handle


def _unsent(sessions, topic: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        rows = session.execute(
            select(Outbox.id).where(Outbox.topic == topic, Outbox.sent_at.is_(None))
        ).all()
        return len(rows)


def test_the_handlers_thread_publishes_its_rows_and_the_relay_is_not_woken(sessions) -> None:  # type: ignore[no-untyped-def]
    broker, topic = InMemoryBroker(), f"eager.{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(sessions, Outbox, broker.producer())
    wake = Wakeup(relay.schema)
    try:
        handle = EagerPublisher(_writer(sessions, topic), relay)
        handle("c_1")
        assert [m.key for m in broker.messages(topic)] == ["c_1"], "on the bus on return"
        assert _unsent(sessions, topic) == 0, "and marked sent"
        assert not wake.wait(0.2, NEVER), "the relay has nothing to do: it is not woken"
        assert relay.relay_once() == 0
    finally:
        wake.close()


def test_while_the_relay_is_mid_batch_the_row_is_left_to_it(sessions) -> None:  # type: ignore[no-untyped-def]
    broker, topic = InMemoryBroker(), f"eager.{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(sessions, Outbox, broker.producer())
    wake = Wakeup(relay.schema)
    try:
        with relay._lock:  # the relay's thread holds its claim
            EagerPublisher(_writer(sessions, topic), relay)("c_2")
        assert broker.messages(topic) == [], "never two claimers in one process at once"
        assert wake.wait(0.2, NEVER), "the relay is woken to publish it"
        assert relay.relay_once() == 1
        assert [m.key for m in broker.messages(topic)] == ["c_2"]
    finally:
        wake.close()


def test_a_broker_failure_loses_nothing_and_raises_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    broker, topic = InMemoryBroker(), f"eager.{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(sessions, Outbox, FlakyProducer(broker, failures=1))
    wake = Wakeup(relay.schema)
    try:
        EagerPublisher(_writer(sessions, topic), relay)("c_3")  # does not raise
        assert broker.messages(topic) == [] and _unsent(sessions, topic) == 1, "kept, unsent"
        assert wake.wait(0.2, NEVER), "the relay is woken for it"
        EagerPublisher(_writer(sessions, topic), relay)("c_4")
        assert _unsent(sessions, topic) == 2, "after a failure the relay's back-off rules"
        assert relay.relay_once() == 2
        assert [m.key for m in broker.messages(topic)] == ["c_3", "c_4"], "once each, in order"
    finally:
        wake.close()


def test_a_handler_that_fails_before_its_commit_publishes_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    broker, topic = InMemoryBroker(), f"eager.{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(sessions, Outbox, broker.producer())
    write = _writer(sessions, topic)

    def failing(customer_id: str) -> None:
        with unit_of_work(sessions) as session:
            add_opted_in(session, topic, customer_id)
            session.flush()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        EagerPublisher(failing, relay)("c_5")
    EagerPublisher(write, relay)("c_6")
    assert [m.key for m in broker.messages(topic)] == ["c_6"]


class CountingProducer(FlakyProducer):
    """The in-memory bus, counting the flushes (one per broker round trip)."""

    def __init__(self, broker: InMemoryBroker) -> None:
        super().__init__(broker, failures=0)
        self.flushes = 0

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1
        super().flush(timeout)


def test_a_consumer_loop_publishes_a_polls_rows_in_one_round_trip(sessions) -> None:  # type: ignore[no-untyped-def]
    broker, topic = InMemoryBroker(), f"eager.{uuid.uuid4().hex[:6]}"
    producer = CountingProducer(broker)
    relay = OutboxRelay(sessions, Outbox, producer)
    source = f"asks.{uuid.uuid4().hex[:6]}"
    for customer_id in ("c_7", "c_8", "c_9"):
        broker.append(source, customer_id, customer_id.encode(), ())
    loop: ConsumerLoop[str] = ConsumerLoop(
        broker,
        "eager-test",
        [source],
        _writer(sessions, topic),
        decoder=lambda message: message.value.decode(),
        publish_eagerly=relay,
    )
    assert loop.run_once(NEVER, timeout_ms=0) == 3
    assert sorted(m.key or "" for m in broker.messages(topic)) == ["c_7", "c_8", "c_9"]
    assert producer.flushes == 1, "one claim and one ack for the poll's three rows"
    assert _unsent(sessions, topic) == 0
