"""Each relayed event carries its type as a record header, and a consumer group that
applies only some types passes over the others without decoding them (shared.events.codec
TYPE_HEADER, shared.consumer.ConsumerLoop `handles`); on SQLite and the in-memory twin."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from services.chat_agent.models import Outbox
from shared.bus import InMemoryBroker, Message
from shared.consumer import BatchConsumerLoop, ConsumerLoop, route_by_type
from shared.db import unit_of_work, utcnow
from shared.events import Envelope, dlq_topic, encode, make_event, type_headers, type_in
from shared.outbox import Draft, add_event, outbox_rows, outbox_writer
from shared.outbox_relay import OutboxRelay

Sessions = Callable[[], Session]
TOPIC = "types.mixed"


def test_the_relay_sends_each_event_with_its_type_header(sqlite_sessions: Sessions) -> None:
    topic = f"t.{uuid.uuid4().hex[:6]}"
    with unit_of_work(sqlite_sessions) as session:
        add_event(
            session, Outbox, "customer.opted_in", {"customer_id": "c1"}, key="c1",
            producer="test", topic=topic,
        )  # fmt: skip
        rows = outbox_rows([Draft("customer.opted_out", "c2", {"customer_id": "c2"})], "test")
        outbox_writer(Outbox).write(session.connection(), [{**rows[0], "topic": topic}])
        # A row written before the outbox had the column (migration 0017): no header.
        old = make_event("customer.opted_in", {"customer_id": "c3"}, key="c3", producer="old")
        session.execute(
            insert(Outbox).values(
                event_id=old.event_id, topic=topic, key="c3", body=encode(old).decode(),
                created_at=utcnow(),
            )
        )  # fmt: skip
    broker = InMemoryBroker()
    OutboxRelay(sqlite_sessions, Outbox, broker.producer()).relay_once()
    sent = {m.key: type_in(m.headers) for m in broker.messages(topic)}
    assert sent == {"c1": "customer.opted_in", "c2": "customer.opted_out", "c3": None}


def _publish(broker: InMemoryBroker) -> None:
    """In order on one partition: an applied type, another type whose body would not even
    decode, the applied type without a header, another type without a header, garbage."""
    broker.ensure_topics([TOPIC], partitions=1)
    producer = broker.producer()

    def event(event_type: str, customer: str) -> bytes:
        return encode(make_event(event_type, {"customer_id": customer}, key="k", producer="t"))

    producer.send(TOPIC, "k", event("customer.opted_in", "c1"), type_headers("customer.opted_in"))
    producer.send(TOPIC, "k", b"{not decoded", type_headers("customer.opted_out"))
    producer.send(TOPIC, "k", event("customer.opted_in", "c2"))
    producer.send(TOPIC, "k", event("customer.opted_out", "c3"))
    producer.send(TOPIC, "k", b"{no header, not an envelope")
    producer.flush()


class Applied:
    def __init__(self) -> None:
        self.customers: list[str] = []

    def __call__(self, envelope: Envelope) -> None:
        self.customers.append(envelope.payload["customer_id"])


def _dead_letters(broker: InMemoryBroker) -> list[Message]:
    return broker.consumer("dlq-reader", [dlq_topic(TOPIC)]).poll(timeout_ms=0)


def test_a_group_passes_over_types_it_does_not_apply_undecoded() -> None:
    broker = InMemoryBroker()
    _publish(broker)
    applied = Applied()
    handle = route_by_type({"customer.opted_in": applied})
    loop = ConsumerLoop(broker, "g", [TOPIC], handle, handles={"customer.opted_in"})
    assert loop.run_once(threading.Event(), timeout_ms=0) == 5
    assert applied.customers == ["c1", "c2"]
    assert loop.stats.passed_over == 1, "the other type, by its header"
    # Without a header a record is decoded as before: the garbage one is dead-lettered.
    assert len(_dead_letters(broker)) == 1
    assert loop.run_once(threading.Event(), timeout_ms=0) == 0, "all committed"


def test_a_batch_group_passes_over_them_too_and_without_handles_decodes_everything() -> None:
    broker = InMemoryBroker()
    _publish(broker)
    batches: list[list[str]] = []

    def handle(envelopes: list[Envelope]) -> None:
        batches.append(
            [e.payload["customer_id"] for e in envelopes if e.type == "customer.opted_in"]
        )

    loop = BatchConsumerLoop(broker, "g", [TOPIC], handle, handles=["customer.opted_in"])
    loop.run_once(threading.Event(), timeout_ms=0)
    assert batches == [["c1", "c2"]] and loop.stats.passed_over == 1
    assert len(_dead_letters(broker)) == 1
    everything = ConsumerLoop(broker, "all", [TOPIC], Applied(), retry_backoff_s=0.0)
    everything.run_once(threading.Event(), timeout_ms=0)
    assert everything.stats.passed_over == 0
    assert len(_dead_letters(broker)) == 3, "no handles: the headed garbage is decoded, and fails"
