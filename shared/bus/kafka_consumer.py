"""The Kafka-protocol consumer of the bus port: a group member with auto-commit off whose
offsets move only when `commit` is called.

Commits without waiting are coalesced: a consumer sends at most one offset commit every
`COMMIT_INTERVAL_S` (the latest offset of each partition it handled), and sends what is
left when a poll comes back empty after that interval, and when it closes (waiting). Only
the offsets of partitions it still owns are sent: a late commit for a partition another
member took over could move that member's offset back. One commit per poll had cost the broker about half its CPU on the
webhook → coupon path and each worker one more round trip per message (measured in
bench/chat_e2e_latency.py, docs/scaling.md). What a crash loses is at most that interval
of offsets: those messages are delivered again and the idempotent handlers drop them
(docs/architecture.md § Invariants), as they already did for a crash between a
handler's commit and the offset commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog

from shared.bus.port import Message, next_offsets
from shared.bus.profiles import BULK_FETCH, BrokerProfile

log = structlog.get_logger(__name__)

COMMIT_INTERVAL_S = 1.0


class KafkaConsumerAdapter:
    """Group consumer with auto-commit off: offsets move only when `commit` is called."""

    def __init__(
        self,
        bootstrap: str,
        profile: BrokerProfile,
        group_id: str,
        topics: Sequence[str],
        namespace: str = "",
        *,
        commit_interval_s: float = COMMIT_INTERVAL_S,
        bulk: bool = False,
    ) -> None:
        from kafka import KafkaConsumer

        self._namespace = namespace
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=namespace + group_id,
            client_id=f"{namespace}{group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **profile.consumer,
            **(BULK_FETCH if bulk else {}),
        )
        self._consumer.subscribe([namespace + t for t in topics])
        self._commit_interval_s = commit_interval_s
        # The next offset of each partition handled, sent or not; `close` commits them
        # again, waiting, whatever the broker made of the commits sent without waiting.
        self._handled: dict[Any, Any] = {}
        self._unsent = False  # handled offsets the broker has not been sent yet
        self._last_sent = 0.0  # time.monotonic() of the last commit sent without waiting

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
        if not out and self._unsent:
            self._send_if_due()  # quiet now: what was handled need not wait for more
        return out

    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        """Commit one past each partition's last handled message; without `wait`, the
        commit is coalesced with the others of its interval and sent without waiting (its
        failure is logged; `close` commits the last offsets again)."""
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        offsets = {
            TopicPartition(self._namespace + t, p): OffsetAndMetadata(o, "", -1)
            for (t, p), o in next_offsets(messages).items()
        }
        if not offsets:
            return
        self._handled.update(offsets)
        self._unsent = True
        if wait:
            self._consumer.commit(offsets=self._owned())
            self._unsent = False
            return
        self._send_if_due()

    def _send_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_sent < self._commit_interval_s:
            return
        owned = self._owned()
        if owned:
            self._consumer.commit_async(offsets=owned, callback=_log_failed_commit)
        self._last_sent = now
        self._unsent = False

    def _owned(self) -> dict[Any, Any]:
        """The handled offsets of the partitions this member still owns (forgetting the
        others: their new owner commits them)."""
        assigned = self._consumer.assignment()
        for tp in [tp for tp in self._handled if tp not in assigned]:
            del self._handled[tp]
        return dict(self._handled)

    def close(self) -> None:
        """Commit the last handled offsets (waiting), then leave the group without
        committing anything more."""
        owned = self._owned() if self._handled else {}
        if owned:
            try:
                self._consumer.commit(offsets=owned, timeout_ms=5_000)
            except Exception as exc:  # leaving anyway: the rest is re-delivered and deduplicated
                log.warning("final_offset_commit_failed", error=str(exc))
            self._handled.clear()
        self._consumer.close(autocommit=False)


def _log_failed_commit(offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        log.warning("async_offset_commit_failed", partitions=len(offsets), error=str(response))
