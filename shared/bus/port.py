"""The message-bus port: what every producer and consumer in tenin is written against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class TopicConfigsUnknown(Exception):
    """The broker cannot say how long it keeps a topic's records (Tansu)."""


class Producer(Protocol):
    def send(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


class Consumer(Protocol):
    def poll(self, timeout_ms: int = 500, max_records: int = 100) -> list[Message]: ...

    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        """Move the group's offsets one past each partition's last message. `wait=False`
        sends the commit without waiting for the broker's answer, and may hold it to send
        with the next ones (Kafka's consumer sends at most one a second, and what it holds
        once a poll comes back empty); a lost or held one re-delivers messages the
        idempotent handlers already recorded. `close` commits the last offsets and waits."""
        ...

    def close(self) -> None: ...


class Broker(Protocol):
    name: str

    def producer(self) -> Producer: ...

    def consumer(self, group_id: str, topics: Sequence[str], *, bulk: bool = False) -> Consumer:
        """A member of `group_id` reading `topics`. `bulk`: a group no customer waits on
        (updates, thanks, campaign status, attribution copies): the broker may hold its
        fetch for a moment (`profiles.BULK_FETCH`) to return more records at once, so it
        costs far fewer fetches than one per record (docs/architecture.md § Hot paths)."""
        ...

    def ensure_topics(self, topics: Iterable[str], partitions: int | None = None) -> None:
        """Create missing topics and grow those with fewer partitions than wanted.

        `partitions=None`: each topic's own count (`shared.events.topics.partitions_of`).
        Adding partitions moves keys to other partitions: docs/architecture.md § Partitions.
        """
        ...

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has now (0 when it does not exist)."""
        ...

    def record_lifetime_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        """The longest each topic may keep a record, in ms: its `retention.ms` plus its
        `segment.ms` (a record goes only with its whole segment, once the segment's newest
        record is older than `retention.ms`, and a segment is closed after `segment.ms`);
        None: kept for ever (`retention.ms` -1, or a compacted topic). A topic the broker
        does not describe is left out; a broker that cannot tell raises TopicConfigsUnknown."""
        ...


def next_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """The offset to commit per partition: one past the last message handled."""
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
    return offsets
