"""Partition counts: configured per topic, and grown on a topic that already exists
(docs/architecture.md § Partitions), on real Kafka and on the in-memory twin."""

from __future__ import annotations

import pytest

from shared.bus import KAFKA_PROFILE, InMemoryBroker, KafkaBroker
from shared.bus.port import Broker
from shared.config import Settings
from shared.events import CAMPAIGN_EVENTS, OFFER_REQUESTS, dlq_topic


@pytest.fixture(params=["kafka", "memory"])
def broker_for(request: pytest.FixtureRequest, unique: str):  # type: ignore[no-untyped-def]
    def build(topic_partitions: int) -> Broker:
        if request.param == "memory":
            return InMemoryBroker(topic_partitions=topic_partitions)
        servers = request.getfixturevalue("real_services")["KAFKA_BOOTSTRAP_SERVERS"]
        return KafkaBroker(
            servers, KAFKA_PROFILE, namespace=f"parts.{unique}.", topic_partitions=topic_partitions
        )

    return build


def _first_records(broker: Broker, group: str, topic: str) -> list[bytes]:
    """The values of the first non-empty poll of a new group (within 15 s)."""
    consumer = broker.consumer(group, [topic])
    try:
        for _ in range(60):
            seen = [m.value for m in consumer.poll(timeout_ms=250)]
            if seen:
                return seen
        return []
    finally:
        consumer.close()


def test_customer_keyed_topics_get_the_configured_count_and_the_others_three(broker_for) -> None:  # type: ignore[no-untyped-def]
    broker = broker_for(5)
    broker.ensure_topics([OFFER_REQUESTS, CAMPAIGN_EVENTS, dlq_topic(OFFER_REQUESTS)])
    assert broker.partition_count(OFFER_REQUESTS) == 5
    assert broker.partition_count(CAMPAIGN_EVENTS) == 3
    assert broker.partition_count(dlq_topic(OFFER_REQUESTS)) == 3


def test_an_existing_topic_with_fewer_partitions_is_grown_and_never_shrunk(broker_for) -> None:  # type: ignore[no-untyped-def]
    broker = broker_for(3)
    broker.ensure_topics([OFFER_REQUESTS])  # an old deployment: 3 partitions
    assert broker.partition_count(OFFER_REQUESTS) == 3
    producer = broker.producer()
    producer.send(OFFER_REQUESTS, "c_1", b"before")
    producer.flush()

    broker.ensure_topics([OFFER_REQUESTS], partitions=12)  # the upgraded worker starts
    assert broker.partition_count(OFFER_REQUESTS) == 12
    broker.ensure_topics([OFFER_REQUESTS], partitions=6)
    assert broker.partition_count(OFFER_REQUESTS) == 12, "partitions are never removed"

    seen = _first_records(broker, "parts.reader", OFFER_REQUESTS)
    assert seen == [b"before"], "records written before the growth are still read"


def test_a_worker_configured_for_more_partitions_grows_the_topic(
    real_services: dict[str, str], unique: str
) -> None:
    def kafka(n: int) -> KafkaBroker:
        servers = real_services["KAFKA_BOOTSTRAP_SERVERS"]
        return KafkaBroker(servers, KAFKA_PROFILE, namespace=f"grow.{unique}.", topic_partitions=n)

    kafka(3).ensure_topics([OFFER_REQUESTS])
    kafka(12).ensure_topics([OFFER_REQUESTS])
    assert kafka(3).partition_count(OFFER_REQUESTS) == 12


def test_topic_partitions_come_from_the_environment() -> None:
    assert Settings.from_env({}).topic_partitions == 12
    assert Settings.from_env({"TENIN_TOPIC_PARTITIONS": "24"}).topic_partitions == 24
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match="TENIN_TOPIC_PARTITIONS"):
        Settings.from_env({"TENIN_TOPIC_PARTITIONS": "0"})


def test_growing_never_breaks_a_topic_on_any_broker(broker: Broker, unique: str) -> None:
    """Kafka and the twin grow the topic; Tansu may refuse, and the topic keeps working."""
    topic = f"parts.any.{unique}"
    broker.ensure_topics([topic], partitions=2)
    broker.ensure_topics([topic], partitions=4)
    grown = broker.partition_count(topic)
    if broker.name == "tansu":
        assert grown in (2, 4)
    else:
        assert grown == 4
    producer = broker.producer()
    producer.send(topic, "k", b"after")
    producer.flush()
    assert _first_records(broker, f"parts.any.{unique}", topic) == [b"after"]
