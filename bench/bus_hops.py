"""The anchor of the chat latency bench: one record through three produce -> consume hops on
Kafka, measured in the same run (bench/chat_e2e_latency.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from shared.bus import broker_from_settings
from shared.config import Settings


def three_bus_hops(settings: Settings, rounds: int) -> list[float]:
    """The anchor: seconds for one record to cross three produce -> consume hops on Kafka.

    This process produces to the first topic; two forwarding threads (each a consumer and
    a producer that waits for acks=all, as the relay does) pass it on; this process reads
    the third. The chat-to-coupon path crosses the bus three times in the same way
    (chat.inbound, offer.requests, offer.decisions), so 4x this is its target. Consumers
    are assigned their partition directly: a group's join is start-up, not a hop.
    """
    from kafka import KafkaConsumer, TopicPartition

    # The topics are named in full here (the run's namespace, then hops.N), so the raw
    # consumers below and the broker's producers agree on them.
    broker = broker_from_settings(replace(settings, topic_namespace=""))
    servers = settings.kafka_bootstrap_servers or ""
    topics = [f"{settings.topic_namespace}hops.{i}" for i in range(3)]
    broker.ensure_topics(topics, partitions=1)
    stop = threading.Event()

    def reader(topic: str) -> Any:
        consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return consumer

    def forward(source: str, target: str) -> None:
        consumer, producer = reader(source), broker.producer()
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    for r in records:
                        producer.send(target, r.key.decode(), r.value)
                        producer.flush(timeout=10)
        finally:
            consumer.close()
            producer.close()

    for source, target in zip(topics, topics[1:], strict=False):
        threading.Thread(target=forward, args=(source, target), daemon=True).start()
    consumer, producer = reader(topics[-1]), broker.producer()

    def hop(value: bytes, limit_s: float) -> bool:
        producer.send(topics[0], value.decode(), value)
        producer.flush(timeout=10)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=100).values():
                if any(r.value == value for r in records):
                    return True
        return False

    seconds: list[float] = []
    try:
        for i in range(rounds + 5):  # the first rounds warm up connections and metadata
            started = time.time()
            if not hop(f"r{i}".encode(), 60.0):
                raise SystemExit("the bus-hop anchor lost a record")
            if i >= 5:
                seconds.append(time.time() - started)
    finally:
        stop.set()
        consumer.close()
        producer.close()
    return seconds
