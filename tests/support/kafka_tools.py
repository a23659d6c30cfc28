"""Kafka helpers for tests and benchmarks: fresh consumer groups, topic tails, and
removing the topics a run made.

Every test run and benchmark makes topics of its own (a namespace per stack, a name per
test), 3 to 12 partitions each, and a developer's broker lives across runs. Tens of
leftover topics cost a drop nothing measurable (docs/benchmarks.md, round 20), but they pile
up run after run, and at ~13,000 partitions Kafka runs out of heap. So runs delete what they
made.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Collection, Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
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


# Topics per DeleteTopics request: a whole test run's in one would be a very long request.
DELETE_CHUNK = 200


def topic_names(bootstrap_servers: str) -> set[str]:
    """Every topic on the broker (internal ones included)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tenin-test-topics")
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> int:
    """Delete `topics` (never Kafka's internal ones, whose names start with "__"); returns
    how many were deleted (0 when the request failed). Best effort: a failure is reported
    on stderr, not raised (a run's result does not depend on its cleanup)."""
    doomed = sorted(t for t in set(topics) if not t.startswith("__"))
    if not doomed:
        return 0
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tenin-test-topics")
        try:
            for start in range(0, len(doomed), DELETE_CHUNK):
                admin.delete_topics(doomed[start : start + DELETE_CHUNK], timeout_ms=30_000)
        finally:
            admin.close()
    except Exception as exc:  # cleanup reports, never fails the run
        print(f"could not delete {len(doomed)} topics: {exc!r}", file=sys.stderr)
        return 0
    return len(doomed)


def delete_namespace(bootstrap_servers: str, namespace: str) -> int:
    """Delete the topics of a stack's namespace (their names start with it)."""
    if not namespace:
        raise ValueError("an empty namespace would name every topic")
    try:
        mine = [t for t in topic_names(bootstrap_servers) if t.startswith(namespace)]
    except Exception as exc:  # as in delete_topics
        print(f"could not list the topics of {namespace!r}: {exc!r}", file=sys.stderr)
        return 0
    return delete_topics(bootstrap_servers, mine)


def delete_topics_made_since(bootstrap_servers: str, before: Collection[str]) -> int:
    """Delete the topics that are on the broker now and were not in `before`."""
    try:
        now = topic_names(bootstrap_servers)
    except Exception as exc:  # as in delete_topics
        print(f"could not list the topics to delete: {exc!r}", file=sys.stderr)
        return 0
    return delete_topics(bootstrap_servers, now - set(before))
