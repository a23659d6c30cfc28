"""The outbox relay: publishes committed outbox rows (shared.outbox) and marks them sent.

Woken by the commit (shared.outbox_wake), it claims unsent rows (`FOR UPDATE SKIP LOCKED`
on PostgreSQL, through the partial index of unsent rows), publishes them with the
idempotent producer (each with its `type` header: shared.events.codec.TYPE_HEADER), waits
for the broker's acknowledgement, and marks them sent in one statement. A crash between publishing and marking re-publishes the row: a duplicate on the
wire that consumers drop by `event_id`. A handler someone waits on downstream can publish
its own commits at once, from its own thread, through the same claim and mark
(`shared.outbox_eager`); the relay is the safety net. Between rounds the relay also
deletes what its service keeps no longer (`shared.retention`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ARRAY, BigInteger, any_, bindparam, select, update
from sqlalchemy.orm import Session, SessionTransaction

from shared.bus import Broker, Producer
from shared.config import Settings
from shared.db import DriverStatement, utcnow
from shared.events import type_headers
from shared.idempotency import ProcessedEventMixin
from shared.outbox import OutboxMixin
from shared.outbox_wake import SIGNALS, Wakeup
from shared.retention import Aged, Pruner, outlasts_topics, prune_quietly, pruner

log = structlog.get_logger(__name__)

EAGER_FLUSH_TIMEOUT_S = EAGER_PAUSE_S = 5.0  # the eager path's ack wait (relay: 30 s), and pause


@dataclass
class Claimed:
    """A batch of outbox rows handed to the producer, its claim's transaction still open
    until `OutboxRelay.settle_sent` (or the relay) marks them sent."""

    session: Session
    transaction: SessionTransaction
    ids: list[int]
    # Whether the claim holds row locks only (PostgreSQL): then it may stay open while its
    # thread does other work. On SQLite a transaction holds the database's write lock.
    on_postgresql: bool


class OutboxRelay:
    """Publishes committed outbox rows and marks them sent.

    It sleeps until a commit wakes it (shared.outbox_wake: LISTEN/NOTIFY on PostgreSQL, a
    signal inside the process everywhere), and polls every `poll_seconds` only as a
    fallback (docs/architecture.md § Hot paths).
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        outbox_model: type[OutboxMixin],
        producer: Producer,
        *,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        wake_on_commit: bool = True,
        prune: Sequence[Pruner] = (),
    ) -> None:
        self._sessions = session_factory
        # Run between rounds: old sent rows, processed-event records, … (shared.retention).
        self.pruners = tuple(prune)
        self._model = outbox_model
        self._producer = producer
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake_on_commit = wake_on_commit
        self.published = 0
        model: Any = outbox_model
        # Built once: SQLAlchemy caches their compiled form; on PostgreSQL they run on the
        # transaction's psycopg connection (shared.db.DriverStatement), the ids as one array.
        self._claim = (
            select(model.id, model.topic, model.key, model.body, model.event_type)
            .where(model.sent_at.is_(None))
            .order_by(model.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self._mark = (
            update(model)
            .where(model.id.in_(bindparam("ids", expanding=True)))
            .values(sent_at=bindparam("now"))
        )
        self._pg_claim = DriverStatement(self._claim)
        self._pg_mark = DriverStatement(
            update(model)
            .where(model.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
            .values(sent_at=bindparam("now"))
        )
        # One claim at a time in this process (the relay's thread or an eager caller), so
        # rows go to the broker in the order they were claimed (by id), as with the relay
        # alone; other processes' relays are kept apart by SKIP LOCKED.
        self._lock = threading.Lock()
        self._eager_paused_until = 0.0

    @property
    def schema(self) -> str:
        """The outbox table's schema: what its commits signal (shared.outbox_wake)."""
        model: Any = self._model
        return str(model.__table__.schema or "main")

    def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        with self._lock:
            sent = self._claim_and_send()
            return self._settle(sent, flush_timeout=30) if sent is not None else 0

    def send_committed(self) -> Claimed | None:
        """Claim what is committed and hand it to the producer, from the calling thread, now
        (shared.outbox_eager); `settle_sent` then waits for the broker's ack and marks it
        sent. Never raises; None when nothing was claimed. When the relay's thread is
        mid-claim, the batch was full, or claiming failed, the relay is woken to do the rest
        (after a failure the eager path stays off for EAGER_PAUSE_S: the relay's back-off
        rules)."""
        if time.monotonic() < self._eager_paused_until or not self._lock.acquire(blocking=False):
            SIGNALS.fire({self.schema})
            return None
        try:
            sent = self._claim_and_send()
        except Exception:
            self._eager_failed("outbox_eager_publish_failed")
            return None
        finally:
            self._lock.release()
        if sent is not None and len(sent.ids) >= self._batch_size:
            SIGNALS.fire({self.schema})  # more may be waiting: the relay looks
        return sent

    def settle_sent(self, sent: Claimed) -> int:
        """Wait for the broker's ack of an eager claim and mark its rows sent; returns how
        many. Never raises: when the ack fails the rows stay unsent (the claim rolls back)
        and the relay is woken for them."""
        try:
            return self._settle(sent, flush_timeout=EAGER_FLUSH_TIMEOUT_S)
        except Exception:
            self._eager_failed("outbox_eager_publish_failed")
            return 0

    def _eager_failed(self, event: str) -> None:
        log.exception(event, schema=self.schema)
        self._eager_paused_until = time.monotonic() + EAGER_PAUSE_S
        SIGNALS.fire({self.schema})

    def _claim_and_send(self) -> Claimed | None:
        """Claim a batch of unsent rows (their transaction stays open: on PostgreSQL it
        holds their row locks, so no other relay claims them) and hand each to the
        producer, in claim order. The caller holds `self._lock`. None: nothing to claim."""
        session = self._sessions()
        transaction = session.begin()
        try:
            conn = session.connection()
            postgresql = conn.dialect.name == "postgresql"
            rows = self._pg_claim.rows(conn, {}) if postgresql else conn.execute(self._claim).all()
            if not rows:
                transaction.commit()
                session.close()
                return None
            for _id, topic, key, body, event_type in rows:
                self._producer.send(topic, key, body.encode("utf-8"), type_headers(event_type))
        except BaseException:
            transaction.rollback()
            session.close()
            raise
        return Claimed(session, transaction, [r[0] for r in rows], postgresql)

    def _settle(self, sent: Claimed, flush_timeout: float) -> int:
        """Mark a claim sent once the broker has acknowledged every record (acks=all), and
        commit; on any failure roll back, so its rows stay unsent, and raise."""
        try:
            self._producer.flush(timeout=flush_timeout)
            marked = {"ids": sent.ids, "now": utcnow()}
            conn = sent.session.connection()
            if sent.on_postgresql:
                self._pg_mark.rows(conn, marked)
            else:
                conn.execute(self._mark, marked)
            sent.transaction.commit()
        except BaseException:
            sent.transaction.rollback()
            raise
        finally:
            sent.session.close()
        self.published += len(sent.ids)
        return len(sent.ids)

    def wakeup(self) -> Wakeup:
        """What `run` sleeps on, for this relay's outbox table."""
        schema = self.schema
        url = None
        if self._wake_on_commit:
            session = self._sessions()
            try:
                bind = session.get_bind()
                url = bind.engine.url
            finally:
                session.close()
        return Wakeup(schema, url)

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; errors are logged and retried with back-off."""
        wake = self.wakeup()
        backoff = self._poll_seconds
        try:
            while not stop.is_set():
                wake.clear()  # a commit from here on wakes the next wait
                try:
                    sent = self.relay_once()
                    backoff = self._poll_seconds
                except Exception:
                    log.exception(
                        "outbox_relay_failed", table=getattr(self._model, "__tablename__", "?")
                    )
                    sent = 0
                    backoff = min(backoff * 2 if backoff else 0.1, 5.0)
                # A full batch may leave rows behind: look again at once. Otherwise sleep:
                # a commit since `clear` (one the claim may have missed) has set the signal.
                if sent < self._batch_size:
                    prune_quietly(self.pruners)
                    wake.wait(backoff, stop)
        finally:
            wake.close()
        # Drain what is already committed before exiting, so SIGTERM loses nothing.
        for _ in range(10):
            try:
                if not self.relay_once():
                    break
            except Exception:
                log.exception("outbox_relay_drain_failed")
                break


def relays_in_workers(settings: Settings) -> bool:
    """Whether each worker process runs its service's relay, and its loops publish their
    own commits eagerly (TENIN_OUTBOX_RELAY=thread, the default); else `tenin relay
    <service>` processes publish the whole outbox, woken by the commits' NOTIFY
    (docs/scaling.md § Relay processes)."""
    return settings.outbox_relay == "thread"


def worker_relay(
    sessions: Callable[[], Session],
    outbox_model: type[OutboxMixin],
    broker: Broker,
    settings: Settings,
    processed_model: type[ProcessedEventMixin],
    *,
    consumed: Sequence[str],
    also: Sequence[Pruner | None] = (),
) -> OutboxRelay:
    """A worker's relay of its service's outbox, as the settings say: its fallback poll,
    and how long its sent rows and the service's processed-event records are kept
    (shared.retention: pruned between the relay's rounds, with the service's own `also`;
    None among those: that retention is off). Records of applied events are pruned only
    if they outlast every record of the `consumed` topics (retention.outlasts_topics)."""
    days = settings.processed_events_retention_days
    pruners = (
        pruner(sessions, Aged.of(outbox_model, "sent_at"), settings.outbox_retention_days),
        pruner(
            sessions,
            Aged.of(processed_model, "processed_at"),
            days,
            allowed=outlasts_topics(broker, consumed, days) if days else None,
        ),
        *also,
    )
    return OutboxRelay(
        sessions,
        outbox_model,
        broker.producer(),
        poll_seconds=settings.relay_poll_seconds,
        prune=[each for each in pruners if each is not None],
    )
