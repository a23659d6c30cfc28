"""The in-memory twin of the bus, for unit tests; the contract suite keeps it honest."""

from __future__ import annotations

import threading
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.bus.port import Consumer, Message, Producer, next_offsets
from shared.events.topics import partitions_of


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

    def __init__(self, partitions: int = 3, topic_partitions: int | None = None) -> None:
        # `partitions`: a topic first used without ensure_topics; `topic_partitions`: the
        # customer-keyed topics' count for ensure_topics (None: `partitions`, as before).
        self._partitions = partitions
        self._topic_partitions = topic_partitions
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

    def consumer(self, group_id: str, topics: Sequence[str], *, bulk: bool = False) -> Consumer:
        with self._lock:
            member = InMemoryConsumer(self, group_id, list(topics))
            self._groups[group_id].members.append(member)
            self._rebalance(group_id)
            return member

    def ensure_topics(self, topics: Iterable[str], partitions: int | None = None) -> None:
        with self._lock:
            grown = False
            for topic in topics:
                wanted = partitions or (
                    partitions_of(topic, self._topic_partitions)
                    if self._topic_partitions
                    else self._partitions
                )
                log = self._logs.setdefault(topic, [])
                grown = grown or (bool(log) and wanted > len(log))
                # Like Kafka's create_partitions: new partitions start empty, and keys
                # hash over the new count from now on.
                log.extend([] for _ in range(wanted - len(log)))
            # New partitions are assigned at the groups' next rebalance, as in Kafka.
            for group_id, group in self._groups.items():
                if grown and group.members:
                    self._rebalance(group_id)

    def partition_count(self, topic: str) -> int:
        with self._lock:
            return len(self._logs.get(topic, ()))

    def record_lifetime_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        """Empty: the twin describes no topic. It keeps every record, and every group's
        offsets, for as long as it lives, so a group never starts over from the earliest
        record (what a window of processed-event records must outlast, on Kafka)."""
        return {}

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

    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        self._broker._commit(self.group_id, next_offsets(messages))

    def close(self) -> None:
        self._broker._leave(self)
