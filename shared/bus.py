"""The message-bus port: a keyed producer and an at-least-once consumer.

Two implementations sit behind it: `KafkaBroker` (real Apache Kafka, or the Tansu broker
of the embedded default, through kafka-python) and `InMemoryBroker`, the twin used by
unit tests. `tests/integration/test_bus_contract.py` runs one suite against all three, so
the twin cannot drift from Kafka.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.config import Settings


@dataclass(frozen=True)
class Message:
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Producer(Protocol):
    def send(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


class Consumer(Protocol):
    def poll(self, timeout_ms: int = 500, max_records: int = 100) -> list[Message]: ...

    def commit(self, messages: Sequence[Message]) -> None: ...

    def close(self) -> None: ...


class Broker(Protocol):
    name: str

    def producer(self) -> Producer: ...

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer: ...

    def ensure_topics(self, topics: Iterable[str], partitions: int = 3) -> None: ...


def next_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """The offset to commit per partition: one past the last message handled."""
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
    return offsets


# --- broker profiles ------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerProfile:
    """Client settings that differ between real Kafka and Tansu, kept in one place."""

    name: str
    producer: dict[str, Any]
    consumer: dict[str, Any]


_PRODUCER_COMMON: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 2,
    "retries": 10,
    "retry_backoff_ms": 200,
    "max_in_flight_requests_per_connection": 5,
}

KAFKA_PROFILE = BrokerProfile(
    name="kafka",
    producer=dict(_PRODUCER_COMMON),
    consumer={
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 300_000,
        "request_timeout_ms": 305_000,
    },
)

# Tansu only completes a consumer-group join when request_timeout_ms exceeds
# max_poll_interval_ms (the join is held for up to the rebalance timeout).
TANSU_PROFILE = BrokerProfile(
    name="tansu",
    producer=dict(_PRODUCER_COMMON),
    consumer={
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 5_000,
        "request_timeout_ms": 10_000,
    },
)

PROFILES = {p.name: p for p in (KAFKA_PROFILE, TANSU_PROFILE)}


# --- Kafka (and Tansu) ----------------------------------------------------------------


class KafkaProducerAdapter:
    """Keyed, idempotent (acks=all) producer."""

    def __init__(
        self, bootstrap: str, profile: BrokerProfile, client_id: str, namespace: str = ""
    ) -> None:
        from kafka import KafkaProducer

        self._namespace = namespace
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, **profile.producer
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


class KafkaConsumerAdapter:
    """Group consumer with auto-commit off: offsets move only when `commit` is called."""

    def __init__(
        self,
        bootstrap: str,
        profile: BrokerProfile,
        group_id: str,
        topics: Sequence[str],
        namespace: str = "",
    ) -> None:
        from kafka import KafkaConsumer

        self._namespace = namespace
        self._consumer = KafkaConsumer(
            *[namespace + t for t in topics],
            bootstrap_servers=bootstrap,
            group_id=namespace + group_id,
            client_id=f"{namespace}{group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **profile.consumer,
        )

    def poll(self, timeout_ms: int = 500, max_records: int = 100) -> list[Message]:
        """Fetch records in partition order."""
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        out: list[Message] = []
        for tp, records in batches.items():
            for r in records:
                out.append(
                    Message(
                        topic=tp.topic[len(self._namespace) :],
                        partition=tp.partition,
                        offset=r.offset,
                        key=r.key.decode("utf-8") if r.key is not None else None,
                        value=r.value,
                        headers=tuple((k, v) for k, v in (r.headers or [])),
                    )
                )
        return out

    def commit(self, messages: Sequence[Message]) -> None:
        """Commit one past each partition's last handled message, synchronously."""
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        offsets = {
            TopicPartition(self._namespace + t, p): OffsetAndMetadata(o, "", -1)
            for (t, p), o in next_offsets(messages).items()
        }
        if offsets:
            self._consumer.commit(offsets=offsets)

    def close(self) -> None:
        """Leave the group without committing anything more."""
        self._consumer.close(autocommit=False)


class KafkaBroker:
    """Real Kafka protocol broker (Apache Kafka or Tansu) reached via kafka-python.

    `namespace` prefixes every topic and consumer group, so several deployments (or test
    runs) can share one cluster without reading each other's streams; code above the
    port always sees the plain topic names of DESIGN §3.
    """

    def __init__(
        self,
        bootstrap: str,
        profile: BrokerProfile,
        client_id: str = "tenin",
        namespace: str = "",
    ) -> None:
        self.bootstrap = bootstrap
        self.profile = profile
        self.name = profile.name
        self.namespace = namespace
        self._client_id = client_id

    def producer(self) -> Producer:
        return KafkaProducerAdapter(self.bootstrap, self.profile, self._client_id, self.namespace)

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        return KafkaConsumerAdapter(self.bootstrap, self.profile, group_id, topics, self.namespace)

    def ensure_topics(self, topics: Iterable[str], partitions: int = 3) -> None:
        """Create missing topics (replication 1: single-node brokers here)."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tenin-admin")
        try:
            existing = set(admin.list_topics())
            wanted = [self.namespace + t for t in dict.fromkeys(topics)]
            missing = [t for t in wanted if t not in existing]
            for topic in missing:
                # Another process may create it between our listing and our request.
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
                    )
        finally:
            admin.close()

    def ping(self, timeout_s: float = 2.0) -> bool:
        """True when the broker answers a metadata request."""
        from kafka import KafkaConsumer

        probe = None
        try:
            probe = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=int(timeout_s * 1000),
                fetch_max_wait_ms=100,
                max_poll_interval_ms=int(timeout_s * 1000) - 500,
                session_timeout_ms=int(timeout_s * 1000) - 500,
                heartbeat_interval_ms=100,
            )
            probe.topics()
            return True
        except Exception:
            return False
        finally:
            if probe is not None:
                probe.close()


# --- in-memory twin -------------------------------------------------------------------


@dataclass
class _Group:
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    members: list[InMemoryConsumer] = field(default_factory=list)


class InMemoryBroker:
    """A broker in one process with Kafka's semantics that matter to tenin.

    Keys pick a partition, order holds per partition, a group's committed offset is
    where a newly joined member resumes, and anything handled but not committed is
    delivered again after a member leaves.
    """

    name = "memory"

    def __init__(self, partitions: int = 3) -> None:
        self._partitions = partitions
        self._lock = threading.RLock()
        self._logs: dict[str, list[list[Message]]] = {}
        self._groups: dict[str, _Group] = defaultdict(_Group)

    def _log(self, topic: str) -> list[list[Message]]:
        if topic not in self._logs:
            self._logs[topic] = [[] for _ in range(self._partitions)]
        return self._logs[topic]

    def append(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        with self._lock:
            log = self._log(topic)
            partition = (zlib.crc32(key.encode()) if key is not None else 0) % len(log)
            offset = len(log[partition])
            log[partition].append(Message(topic, partition, offset, key, value, tuple(headers)))

    def messages(self, topic: str) -> list[Message]:
        """Every record of a topic (test helper)."""
        with self._lock:
            return [m for part in self._log(topic) for m in part]

    def producer(self) -> Producer:
        return InMemoryProducer(self)

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        with self._lock:
            member = InMemoryConsumer(self, group_id, list(topics))
            self._groups[group_id].members.append(member)
            self._rebalance(group_id)
            return member

    def ensure_topics(self, topics: Iterable[str], partitions: int = 3) -> None:
        with self._lock:
            for topic in topics:
                self._log(topic)

    def _rebalance(self, group_id: str) -> None:
        group = self._groups[group_id]
        assignable = sorted(
            {(t, p) for m in group.members for t in m.topics for p in range(len(self._log(t)))}
        )
        for member in group.members:
            member.assignment.clear()
        for i, tp in enumerate(assignable):
            member = group.members[i % len(group.members)]
            member.assignment[tp] = group.committed.get(tp, 0)

    def _commit(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        with self._lock:
            self._groups[group_id].committed.update(offsets)

    def _leave(self, member: InMemoryConsumer) -> None:
        with self._lock:
            group = self._groups[member.group_id]
            if member in group.members:
                group.members.remove(member)
                if group.members:
                    self._rebalance(member.group_id)

    def _fetch(self, member: InMemoryConsumer, max_records: int) -> list[Message]:
        with self._lock:
            out: list[Message] = []
            for (topic, partition), position in member.assignment.items():
                log = self._log(topic)[partition]
                chunk = log[position : position + max_records - len(out)]
                out.extend(chunk)
                member.assignment[(topic, partition)] = position + len(chunk)
                if len(out) >= max_records:
                    break
            return out


class InMemoryProducer:
    def __init__(self, broker: InMemoryBroker) -> None:
        self._broker = broker

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        self._broker.append(topic, key, value, headers)

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None


class InMemoryConsumer:
    def __init__(self, broker: InMemoryBroker, group_id: str, topics: list[str]) -> None:
        self._broker = broker
        self.group_id = group_id
        self.topics = topics
        self.assignment: dict[tuple[str, int], int] = {}

    def poll(self, timeout_ms: int = 500, max_records: int = 100) -> list[Message]:
        batch = self._broker._fetch(self, max_records)
        if not batch and timeout_ms:
            threading.Event().wait(min(timeout_ms, 20) / 1000)
        return batch

    def commit(self, messages: Sequence[Message]) -> None:
        self._broker._commit(self.group_id, next_offsets(messages))

    def close(self) -> None:
        self._broker._leave(self)


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
    )
