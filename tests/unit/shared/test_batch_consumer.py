"""BatchConsumerLoop on the in-memory broker: a whole poll per handler call, and a poison
message found by splitting goes to the DLQ while the rest commits."""

from __future__ import annotations

import threading

from shared.bus import InMemoryBroker, Message
from shared.consumer import BatchConsumerLoop
from shared.events import Envelope, dlq_topic, encode, make_event

TOPIC = "batch.requests"


def publish(
    broker: InMemoryBroker, customers: list[str], *, topic: str = TOPIC, undecodable: bool = True
) -> None:
    """One event per customer, all on one partition (one key) so their order is fixed, then
    (`undecodable`) a message that is no envelope."""
    broker.ensure_topics([topic], partitions=1)
    producer = broker.producer()
    for c in customers:
        envelope = make_event("customer.opted_out", {"customer_id": c}, key="k", producer="t")
        producer.send(topic, "k", encode(envelope))
    if undecodable:
        producer.send(topic, "k", b"{not an envelope")
    producer.flush()


def dead_letters(broker: InMemoryBroker) -> list[Message]:
    return broker.consumer("dlq-reader", [dlq_topic(TOPIC)]).poll(timeout_ms=0)


class Recorder:
    """A batch handler that fails any batch holding a poison customer, like a transaction."""

    def __init__(self, poison: set[str]) -> None:
        self.poison = poison
        self.calls: list[list[str]] = []
        self.committed: list[str] = []

    def __call__(self, batch: list[Envelope]) -> None:
        customers = [e.payload["customer_id"] for e in batch]
        self.calls.append(customers)
        if self.poison & set(customers):
            raise RuntimeError("violates a constraint")
        self.committed += customers


def loop(broker: InMemoryBroker, handler: Recorder) -> BatchConsumerLoop[Envelope]:
    return BatchConsumerLoop(broker, "g", [TOPIC], handler, retry_backoff_s=0.0, batch_size=50)


def test_a_clean_poll_is_one_handler_call_and_the_undecodable_message_is_dead_lettered() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(10)]
    publish(broker, customers)
    handler = Recorder(set())
    consumer = loop(broker, handler)
    assert consumer.run_once(threading.Event(), timeout_ms=0) == 11
    assert handler.calls == [customers]
    assert len(dead_letters(broker)) == 1
    assert consumer.run_once(threading.Event(), timeout_ms=0) == 0  # all committed


def test_a_poison_request_is_isolated_by_splitting_and_the_rest_commits_in_order() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(16)]
    publish(broker, customers)
    handler = Recorder({"c11"})
    consumer = loop(broker, handler)
    consumer.run_once(threading.Event(), timeout_ms=0)
    assert handler.committed == [c for c in customers if c != "c11"]  # order kept
    assert handler.calls.count(["c11"]) == 3  # alone, retried max_attempts times
    letters = dead_letters(broker)
    assert len(letters) == 2  # the poison request and the undecodable message
    assert consumer.stats.dead_lettered == 2
    assert consumer.splits >= 4  # 16 → 8 → 4 → 2 → 1
    assert len(handler.calls) < 16 + 3  # far fewer calls than one per message
    assert consumer.run_once(threading.Event(), timeout_ms=0) == 0  # offsets committed
