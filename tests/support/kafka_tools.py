"""Kafka helpers for tests and benchmarks: fresh consumer groups and topic tails."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from shared.events import Envelope, decode


def start_groups_at_end(bootstrap_servers: str, groups: list[str], topics: list[str]) -> None:
    """Commit each group's offsets at the current end of every partition."""
    probe = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in (probe.partitions_for_topic(t) or ())
        ]
        ends = probe.end_offsets(partitions)
    finally:
        probe.close()
    for group in groups:
        committer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        try:
            committer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in ends.items()})
        finally:
            committer.close()


class TopicTail:
    """Reads a topic from its current end (no group), for asserting on published events."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False
        )
        partitions = [
            TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic) or ()
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_end(*partitions)
        for tp in partitions:
            self._consumer.position(tp)  # resolve the end now, not at the first poll
        self.seen: list[Envelope] = []
        self._lock = threading.Lock()

    def matching(self, predicate: Callable[[Envelope], bool]) -> list[Envelope]:
        with self._lock:
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    self.seen.append(decode(record.value))
            return [e for e in self.seen if predicate(e)]

    def close(self) -> None:
        self._consumer.close()
