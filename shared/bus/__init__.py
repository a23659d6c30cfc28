"""The message-bus port: a keyed producer and an at-least-once consumer.

Two implementations sit behind it: `KafkaBroker` (real Apache Kafka, or the Tansu broker
of the embedded default, through kafka-python) and `InMemoryBroker`, the twin used by
unit tests. `tests/integration/shared/test_bus_contract.py` runs one suite against all three, so
the twin cannot drift from Kafka.
"""

from __future__ import annotations

from shared.bus.in_memory import InMemoryBroker, InMemoryConsumer, InMemoryProducer
from shared.bus.kafka_adapter import KafkaBroker, KafkaProducerAdapter
from shared.bus.kafka_consumer import KafkaConsumerAdapter
from shared.bus.port import (
    Broker,
    Consumer,
    Message,
    Producer,
    TopicConfigsUnknown,
    next_offsets,
)
from shared.bus.profiles import KAFKA_PROFILE, PROFILES, TANSU_PROFILE, BrokerProfile
from shared.config import Settings

__all__ = [
    "KAFKA_PROFILE",
    "PROFILES",
    "TANSU_PROFILE",
    "Broker",
    "BrokerProfile",
    "Consumer",
    "InMemoryBroker",
    "InMemoryConsumer",
    "InMemoryProducer",
    "KafkaBroker",
    "KafkaConsumerAdapter",
    "KafkaProducerAdapter",
    "Message",
    "Producer",
    "TopicConfigsUnknown",
    "broker_from_settings",
    "next_offsets",
]


def broker_from_settings(settings: Settings) -> Broker:
    """The broker these settings point at (Kafka or Tansu, by TENIN_BROKER_FLAVOR)."""
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: run under `tenin demo`, `tenin embedded up`, "
            'or `eval "$(scripts/services up)"`'
        )
    profile = PROFILES[settings.broker_flavor]
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        profile,
        client_id=settings.service,
        namespace=settings.topic_namespace,
        topic_partitions=settings.topic_partitions,
    )
