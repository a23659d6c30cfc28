"""Offset commits sent without waiting are coalesced (shared/bus/kafka_consumer.py), on real
Kafka: at most one a commit interval, the rest sent once the stream goes quiet or the
consumer leaves, so nothing handled is left uncommitted for long and a crash re-delivers at
most one interval of messages."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient

from shared.bus import KAFKA_PROFILE, KafkaBroker
from shared.bus.kafka_consumer import KafkaConsumerAdapter
from tests.support.brokers import drain, poll_quietly

INTERVAL_S = 2.0


@pytest.fixture
def servers(real_services: dict[str, str]) -> str:
    return real_services["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture
def admin(servers: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=servers, client_id="test-commits")
    yield client
    client.close()


def _committed(admin: KafkaAdminClient, group: str) -> int:
    """The group's committed offsets, summed over partitions (0 before any commit)."""
    offsets = admin.list_group_offsets(group).get(group, {})
    return sum(meta.offset for meta in offsets.values() if meta.offset >= 0)


def _wait_committed(admin: KafkaAdminClient, group: str, wanted: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen = _committed(admin, group)
    while seen != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = _committed(admin, group)
    return seen


def _topic_of(broker: KafkaBroker, topic: str, count: int) -> None:
    """`topic` holding the values 0 .. count-1, all under one key (one partition)."""
    broker.ensure_topics([topic])
    producer = broker.producer()
    try:
        for i in range(count):
            producer.send(topic, "one-key", str(i).encode())
        producer.flush()
    finally:
        producer.close()


def test_commits_within_an_interval_are_coalesced_and_sent_once_quiet(
    servers: str, admin: KafkaAdminClient, unique: str
) -> None:
    topic = f"commits.coalesced.{unique}"
    _topic_of(KafkaBroker(servers, KAFKA_PROFILE), topic, 20)
    group = f"g.{unique}"
    consumer = KafkaConsumerAdapter(
        servers, KAFKA_PROFILE, group, [topic], commit_interval_s=INTERVAL_S
    )
    try:
        got = drain(consumer, 20)
        consumer.commit(got[:5], wait=False)  # the first commit goes at once
        assert _wait_committed(admin, group, 5, timeout=10) == 5
        for at in range(5, 20, 5):  # the next ones, within the interval, are held
            consumer.commit(got[at : at + 5], wait=False)
        assert _committed(admin, group) == 5  # a crash now would re-deliver 5..19
        # The stream is quiet: an empty poll after the interval sends the held offsets,
        # without the consumer leaving.
        assert poll_quietly(consumer, INTERVAL_S + 0.5) == []
        assert _wait_committed(admin, group, 20, timeout=10) == 20
    finally:
        consumer.close()


def test_leaving_commits_what_the_interval_held(
    servers: str, admin: KafkaAdminClient, unique: str
) -> None:
    topic = f"commits.leaving.{unique}"
    broker = KafkaBroker(servers, KAFKA_PROFILE)
    _topic_of(broker, topic, 10)
    group = f"g.{unique}"
    first = KafkaConsumerAdapter(servers, KAFKA_PROFILE, group, [topic], commit_interval_s=60)
    got = drain(first, 10)
    first.commit(got[:3], wait=False)
    first.commit(got[3:7], wait=False)  # held: within the interval
    first.close()  # leaving sends it, waiting
    assert _committed(admin, group) == 7
    second = broker.consumer(group, [topic])
    try:
        assert [int(m.value) for m in drain(second, 3)] == [7, 8, 9]
    finally:
        second.close()
