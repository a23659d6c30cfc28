"""The Kafka-protocol implementation of the bus port (Apache Kafka and Tansu), via kafka-python."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from shared.bus.kafka_consumer import KafkaConsumerAdapter
from shared.bus.partitioner import Murmur2Partitioner
from shared.bus.port import Consumer, Producer, TopicConfigsUnknown
from shared.bus.profiles import BrokerProfile
from shared.events.topics import CUSTOMER_KEYED_PARTITIONS, partitions_of

log = structlog.get_logger(__name__)

# Metadata requests of this version are served by Kafka 2.8+ and by Tansu.
PROBE_API_VERSION = (2, 8, 0)
PROBE_REQUEST_TIMEOUT_MS = 1500
# A created or grown topic shows its partitions in the broker's metadata a moment after
# the controller accepts the change; ensure_topics waits up to this long for them.
TOPIC_METADATA_WAIT_S = 15.0
TOPIC_METADATA_POLL_S = 0.05


def _partition_counts(admin: Any, topics: Iterable[str]) -> dict[str, int]:
    """Each existing topic's partition count, as the broker's metadata shows it now."""
    return {
        d["name"]: len(d.get("partitions") or ())
        for d in admin.describe_topics(list(topics))
        if not d.get("error_code")
    }


class KafkaProducerAdapter:
    """Keyed, idempotent (acks=all) producer."""

    def __init__(
        self, bootstrap: str, profile: BrokerProfile, client_id: str, namespace: str = ""
    ) -> None:
        from kafka import KafkaProducer

        self._namespace = namespace
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            partitioner=Murmur2Partitioner(),  # Kafka's placement, hashed in compiled code
            **profile.producer,
        )
        # kafka-python's flush() returns once records are *completed*, failed ones
        # included; each thread keeps its own futures so its flush can raise on them.
        self._pending = threading.local()

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Queue a record; `flush` waits until the broker has acknowledged it."""
        future = self._producer.send(
            self._namespace + topic,
            key=key.encode("utf-8") if key is not None else None,
            value=value,
            headers=list(headers),
        )
        if not hasattr(self._pending, "futures"):
            self._pending.futures = []
        self._pending.futures.append(future)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record this thread queued is acknowledged (raises on failure)."""
        futures = getattr(self._pending, "futures", [])
        self._pending.futures = []
        self._producer.flush(timeout=timeout)
        for future in futures:
            if future.failed():
                raise future.exception

    def close(self) -> None:
        """Flush and close."""
        self._producer.close(timeout=10)


class KafkaBroker:
    """Real Kafka protocol broker (Apache Kafka or Tansu) reached via kafka-python.

    `namespace` prefixes every topic and consumer group, so several deployments (or test
    runs) can share one cluster without reading each other's streams; code above the
    port always sees the plain topic names of docs/interfaces.md § Events.
    """

    def __init__(
        self,
        bootstrap: str,
        profile: BrokerProfile,
        client_id: str = "tenin",
        namespace: str = "",
        topic_partitions: int = CUSTOMER_KEYED_PARTITIONS,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic_partitions = topic_partitions
        self.profile = profile
        self.name = profile.name
        self.namespace = namespace
        self._client_id = client_id
        self._probe: Any = None  # the readiness client, built on the first ping
        self._probe_lock = threading.Lock()

    def producer(self) -> Producer:
        return KafkaProducerAdapter(self.bootstrap, self.profile, self._client_id, self.namespace)

    def consumer(self, group_id: str, topics: Sequence[str], *, bulk: bool = False) -> Consumer:
        return KafkaConsumerAdapter(
            self.bootstrap, self.profile, group_id, topics, self.namespace, bulk=bulk
        )

    def ensure_topics(self, topics: Iterable[str], partitions: int | None = None) -> None:
        """Create missing topics (replication 1: single-node brokers here) and grow those
        with fewer partitions than wanted (docs/architecture.md § Partitions).

        A broker that cannot add partitions (Tansu may not) keeps the topic as it is,
        with a warning: the topic works, only fewer processes can share it.
        """
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        wanted = {
            self.namespace + t: partitions or partitions_of(t, self.topic_partitions)
            for t in dict.fromkeys(topics)
        }
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tenin-admin")
        try:
            existing = set(admin.list_topics())
            changed: dict[str, int] = {}
            for topic, count in wanted.items():
                if topic in existing:
                    continue
                # Another process may create it between our listing and our request.
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        [NewTopic(topic, num_partitions=count, replication_factor=1)]
                    )
                    changed[topic] = count
            changed |= self._grow(admin, {t: n for t, n in wanted.items() if t in existing})
            self._await_partitions(admin, changed)
        finally:
            admin.close()

    def _grow(self, admin: Any, wanted: dict[str, int]) -> dict[str, int]:
        """Add partitions to the topics that have fewer than wanted; returns those grown."""
        from kafka.admin import NewPartitions
        from kafka.errors import InvalidPartitionsError, KafkaError

        if not wanted:
            return {}
        try:
            have = _partition_counts(admin, wanted)
        except KafkaError as exc:
            log.warning("topic_partitions_not_read", error=type(exc).__name__)
            return {}
        short = {t: n for t, n in wanted.items() if 0 < have.get(t, 0) < n}
        grown: dict[str, int] = {}
        for topic, count in short.items():
            try:
                admin.create_partitions({topic: NewPartitions(total_count=count)})
                log.warning("topic_partitions_grown", topic=topic, before=have[topic], after=count)
                grown[topic] = count
            except InvalidPartitionsError:
                grown[topic] = count  # another process grew it first (to at least this count)
            except KafkaError as exc:
                log.warning(
                    "topic_partitions_not_grown",
                    topic=topic,
                    partitions=have[topic],
                    wanted=count,
                    error=type(exc).__name__,
                )
        return grown

    def _await_partitions(self, admin: Any, wanted: dict[str, int]) -> None:
        """Wait until the broker's metadata shows each topic with at least its partitions.

        The controller accepts a create or a growth before the broker serving metadata
        has applied it; a consumer that subscribes in that moment is assigned only the
        old partitions, and a producer places keys by the old count.
        """
        from kafka.errors import KafkaError

        deadline = time.monotonic() + TOPIC_METADATA_WAIT_S
        pending = dict(wanted)
        while pending:
            with contextlib.suppress(KafkaError):
                visible = _partition_counts(admin, pending)
                pending = {t: n for t, n in pending.items() if visible.get(t, 0) < n}
            if not pending:
                return
            if time.monotonic() >= deadline:
                log.warning("topic_partitions_not_visible", topics=sorted(pending))
                return
            time.sleep(TOPIC_METADATA_POLL_S)

    def partition_count(self, topic: str) -> int:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tenin-admin")
        try:
            return _partition_counts(admin, [self.namespace + topic]).get(self.namespace + topic, 0)
        except Exception:
            return 0
        finally:
            admin.close()

    def record_lifetime_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        """Each topic's `retention.ms` + `segment.ms` as the broker has them (its defaults
        included: 7 days each on Apache Kafka), None for a topic kept for ever."""
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

        if not self.profile.describes_topic_configs:
            raise TopicConfigsUnknown(f"{self.name} does not describe topic configs")

        wanted = ("retention.ms", "segment.ms", "cleanup.policy")
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tenin-admin")
        try:
            described = admin.describe_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC,
                        self.namespace + t,
                        configs=dict.fromkeys(wanted),
                    )
                    for t in dict.fromkeys(topics)
                ],
                config_filter="all",
            )
        finally:
            admin.close()
        by_topic = described.get("topic", {})
        lifetimes: dict[str, int | None] = {}
        for topic in topics:
            configs = by_topic.get(self.namespace + topic)
            if configs:
                lifetimes[topic] = _record_lifetime_ms(
                    {k: str((configs.get(k) or {}).get("value")) for k in wanted}
                )
        return lifetimes

    def ping(self) -> bool:
        """True when the broker answers a metadata request; False when it refuses one.

        One probe client per broker, created on the first ping and reused. While the
        broker is unreachable the request waits (kafka-python keeps reconnecting and
        answers once the broker is back), so callers bound the wait themselves:
        /readyz runs pings on its own thread (docs/architecture.md § Invariants, readiness).
        """
        try:
            self._probe_client().topics()
            return True
        except Exception:
            return False

    def _probe_client(self) -> Any:
        with self._probe_lock:
            if self._probe is None:
                from kafka import KafkaConsumer

                # An explicit api_version skips kafka-python's eager bootstrap, which
                # blocks the constructor for 30 s when the broker is down.
                self._probe = KafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    client_id=f"{self._client_id}-readiness",
                    api_version=PROBE_API_VERSION,
                    request_timeout_ms=PROBE_REQUEST_TIMEOUT_MS,
                    reconnect_backoff_max_ms=5000,
                )
            return self._probe


def _record_lifetime_ms(configs: dict[str, str]) -> int | None:
    """retention.ms + segment.ms, or None when records are kept for ever."""
    retention = int(configs["retention.ms"])
    if "compact" in configs["cleanup.policy"] or retention < 0:
        return None
    return retention + int(configs["segment.ms"])
