"""The anchor of the chat latency bench: one record through three produce -> consume hops on
Kafka, measured in the same run as the path it anchors (bench/chat_e2e_latency.py), one
measurement between two of its rounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from shared.bus import broker_from_settings
from shared.config import Settings

WARM_UP = 5  # the first records warm up connections and metadata


class ThreeBusHops:
    """The anchor: seconds for one record to cross three produce -> consume hops on Kafka.

    This process produces to the first topic; two forwarding threads (each a consumer and
    a producer that waits for acks=all, as the relay does) pass it on; this process reads
    the third. The chat-to-coupon path crosses the bus three times in the same way
    (chat.inbound, offer.requests, offer.decisions), so 4x this is its target. Consumers
    are assigned their partition directly: a group's join is start-up, not a hop. Open it
    with `three_bus_hops`.
    """

    def __init__(self, settings: Settings) -> None:
        # The topics are named in full here (the run's namespace, then hops.N), so the raw
        # consumers below and the broker's producers agree on them.
        self._broker = broker_from_settings(replace(settings, topic_namespace=""))
        self._servers = settings.kafka_bootstrap_servers or ""
        self._topics = [f"{settings.topic_namespace}hops.{i}" for i in range(3)]
        self._broker.ensure_topics(self._topics, partitions=1)
        self._stop = threading.Event()
        self._sent = 0
        for source, target in zip(self._topics, self._topics[1:], strict=False):
            threading.Thread(target=self._forward, args=(source, target), daemon=True).start()
        self._consumer, self._producer = self._reader(self._topics[-1]), self._broker.producer()
        for _ in range(WARM_UP):
            self.measure()

    def measure(self) -> float:
        """Seconds for one new record to come out of the third hop."""
        self._sent += 1
        value = f"r{self._sent}".encode()
        started = time.time()
        self._producer.send(self._topics[0], value.decode(), value)
        self._producer.flush(timeout=10)
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=100).values():
                if any(r.value == value for r in records):
                    return time.time() - started
        raise SystemExit("the bus-hop anchor lost a record")

    def close(self) -> None:
        self._stop.set()
        self._consumer.close()
        self._producer.close()

    def _reader(self, topic: str) -> Any:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self._servers, enable_auto_commit=False)
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return consumer

    def _forward(self, source: str, target: str) -> None:
        consumer, producer = self._reader(source), self._broker.producer()
        try:
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    for r in records:
                        producer.send(target, r.key.decode(), r.value)
                        producer.flush(timeout=10)
        finally:
            consumer.close()
            producer.close()


@contextmanager
def three_bus_hops(settings: Settings) -> Iterator[ThreeBusHops]:
    """The anchor's topics and forwarders for the run, warmed up."""
    hops = ThreeBusHops(settings)
    try:
        yield hops
    finally:
        hops.close()
