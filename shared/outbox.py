"""The transactional outbox: events are written with the state change, then relayed.

Each service declares its own outbox table (in its own schema) with `OutboxMixin`.
`add_event` writes a row in the caller's business transaction; `OutboxRelay` claims
unsent rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL), publishes them with the idempotent
producer, waits for the broker's acknowledgement, and marks them sent. A crash between
publishing and marking re-publishes the row: a duplicate on the wire that consumers
drop by `event_id`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import BigInteger, Integer, String, Text, Uuid, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.bus import Producer
from shared.db import UTCDateTime, utcnow
from shared.events import TOPIC_OF_TYPE, Envelope, Strict, encode, make_event

log = structlog.get_logger(__name__)


class OutboxMixin:
    """An outbox table; a service adds only its schema (`__table_args__`)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


def add_event(
    session: Session,
    outbox_model: type[OutboxMixin],
    event_type: str,
    payload: Strict | dict[str, Any],
    *,
    key: str,
    producer: str,
    topic: str | None = None,
) -> Envelope:
    """Validate an event and write it to the outbox inside the caller's transaction."""
    envelope = make_event(event_type, payload, key=key, producer=producer)
    session.add(
        outbox_model(  # type: ignore[call-arg]  # a mixin: the mapped subclass takes columns
            event_id=envelope.event_id,
            topic=topic or TOPIC_OF_TYPE[event_type],
            key=key,
            body=encode(envelope).decode("utf-8"),
        )
    )
    return envelope


class OutboxRelay:
    """Publishes committed outbox rows and marks them sent."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        outbox_model: type[OutboxMixin],
        producer: Producer,
        *,
        batch_size: int = 200,
        poll_seconds: float = 0.05,
    ) -> None:
        self._sessions = session_factory
        self._model = outbox_model
        self._producer = producer
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self.published = 0

    def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        model: Any = self._model
        session = self._sessions()
        try:
            with session.begin():
                rows = (
                    session.execute(
                        select(model)
                        .where(model.sent_at.is_(None))
                        .order_by(model.id)
                        .limit(self._batch_size)
                        .with_for_update(skip_locked=True)
                    )
                    .scalars()
                    .all()
                )
                if not rows:
                    return 0
                for row in rows:
                    self._producer.send(row.topic, row.key, row.body.encode("utf-8"))
                # Mark sent only once the broker has acknowledged every record (acks=all).
                self._producer.flush(timeout=30)
                now = utcnow()
                for row in rows:
                    row.sent_at = now
            self.published += len(rows)
            return len(rows)
        finally:
            session.close()

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; errors are logged and retried with back-off."""
        backoff = self._poll_seconds
        while not stop.is_set():
            try:
                sent = self.relay_once()
                backoff = self._poll_seconds
            except Exception:
                log.exception(
                    "outbox_relay_failed", table=getattr(self._model, "__tablename__", "?")
                )
                sent = 0
                backoff = min(backoff * 2 if backoff else 0.1, 5.0)
            if not sent:
                stop.wait(backoff)
        # Drain what is already committed before exiting, so SIGTERM loses nothing.
        for _ in range(10):
            try:
                if not self.relay_once():
                    break
            except Exception:
                log.exception("outbox_relay_drain_failed")
                break
