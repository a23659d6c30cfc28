"""`chat.inbound` in LINE timestamp order: the worker's consumer sorts each poll batch.

The webhook publishes one call's events sorted by timestamp, keyed by sender; two calls
racing can still reach the bus out of order, so each batch is sorted again by LINE
timestamp within each partition before it is handled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from shared.bus import Broker, Consumer, Message, Producer


def _line_timestamp(message: Message) -> int:
    try:
        return int(json.loads(message.value)["payload"]["event"]["timestamp"])
    except (ValueError, KeyError, TypeError):
        return 0  # undecodable: the loop dead-letters it wherever it sorts


class _TimestampOrderedConsumer:
    """Hands each poll batch over sorted by LINE timestamp within each partition."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def poll(self, timeout_ms: int = 500, max_records: int = 100) -> list[Message]:
        batch = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        # Stable: equal timestamps keep their offset order.
        return sorted(batch, key=lambda m: (m.topic, m.partition, _line_timestamp(m)))

    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        self._consumer.commit(messages, wait=wait)

    def close(self) -> None:
        self._consumer.close()


class TimestampOrderedBroker:
    """A broker whose consumers sort batches by LINE timestamp (chat.inbound only)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self.name = broker.name

    def producer(self) -> Producer:
        return self._broker.producer()

    def consumer(self, group_id: str, topics: Sequence[str], *, bulk: bool = False) -> Consumer:
        return _TimestampOrderedConsumer(self._broker.consumer(group_id, topics, bulk=bulk))

    def ensure_topics(self, topics: Iterable[str], partitions: int | None = None) -> None:
        self._broker.ensure_topics(topics, partitions)

    def partition_count(self, topic: str) -> int:
        return self._broker.partition_count(topic)

    def record_lifetime_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        return self._broker.record_lifetime_ms(topics)
