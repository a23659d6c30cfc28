"""On real Kafka, a worker keeps every processed-event record while a topic it consumes may
keep an event longer than the records' window (shared/retention.outlasts_topics)."""

from __future__ import annotations

import uuid

from kafka.admin import KafkaAdminClient, NewTopic

from shared.bus import KAFKA_PROFILE, KafkaBroker
from shared.retention import outlasts_topics

MS_A_DAY = 86_400_000


def test_the_window_is_checked_against_what_kafka_keeps(real_services: dict[str, str]) -> None:
    bootstrap = real_services["KAFKA_BOOTSTRAP_SERVERS"]
    plain, kept_long = (f"lifetime.{name}.{uuid.uuid4().hex[:8]}" for name in ("plain", "long"))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-lifetime")
    try:
        admin.create_topics(
            [
                NewTopic(plain, num_partitions=1, replication_factor=1),
                NewTopic(
                    kept_long,
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={"retention.ms": str(30 * MS_A_DAY), "segment.ms": "3600000"},
                ),
            ]
        )
        broker = KafkaBroker(bootstrap, KAFKA_PROFILE)
        assert broker.record_lifetime_ms([plain, kept_long]) == {
            plain: 14 * MS_A_DAY,  # Kafka's defaults: 7 days, plus up to 7 in an open segment
            kept_long: 30 * MS_A_DAY + 3_600_000,
        }
        assert outlasts_topics(broker, [plain], 15)(), "the default window outlasts the defaults"
        assert not outlasts_topics(broker, [plain], 14)()
        assert not outlasts_topics(broker, [plain, kept_long], 15)()
        assert outlasts_topics(broker, [plain, kept_long], 31)()
    finally:
        admin.delete_topics([plain, kept_long])
        admin.close()
