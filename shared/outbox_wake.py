"""Waking the outbox relay when rows commit, instead of polling (docs/architecture.md § Hot paths).

Every transaction that inserts into a service's `outbox` table (through `add_event`, a
bulk insert or any other statement) is noticed by a connection hook, without the writer
doing anything:

- on PostgreSQL the hook sends `NOTIFY tenin_outbox_<schema>, '<pid>'` inside that
  transaction, just before its COMMIT; the server delivers it only if the transaction
  commits, to every process LISTENing (the relays of every worker of that service). A
  listener skips the notifications of its own process: the signal below has already
  woken its relay, and a second wake-up would be a claim transaction that finds nothing;
- in every database, the committing thread signals the relays of its own process after
  the commit (the only signal on SQLite, where writers in other processes are found by
  the relay's slow fallback poll).

A thread that publishes its own commits' rows at once (`shared.outbox_eager`)
holds its signals (`signals_held`): the schemas it committed are handed to it instead of
waking its process's relays, which would only find the rows claimed already. The NOTIFY
to other processes is sent all the same.

A relay that misses a signal (its LISTEN connection was down, a writer skipped the hook)
still finds the rows at its next fallback poll: the signal makes delivery fast, never
correct.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

log = structlog.get_logger(__name__)

CHANNEL_PREFIX = "tenin_outbox_"
_INSERT_INTO_OUTBOX = re.compile(r'\s*INSERT\s+INTO\s+"?(\w+)"?\."?outbox"?[\s(]', re.IGNORECASE)
_WRITTEN = "tenin_outbox_written"  # connection info key: schemas written in this transaction
_committed = threading.local()  # schemas committed by this thread, not yet signalled
_held = threading.local()  # `signals_held`: where this thread's committed schemas go instead


def channel(schema: str) -> str:
    """The NOTIFY channel of a service's outbox."""
    return CHANNEL_PREFIX + schema


class _Signals:
    """The relays of this process, by outbox schema."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, set[threading.Event]] = {}

    def subscribe(self, schema: str, wake: threading.Event) -> None:
        with self._lock:
            self._events.setdefault(schema, set()).add(wake)

    def unsubscribe(self, schema: str, wake: threading.Event) -> None:
        with self._lock:
            self._events.get(schema, set()).discard(wake)

    def fire(self, schemas: set[str]) -> None:
        with self._lock:
            for schema in schemas:
                for wake in self._events.get(schema, ()):
                    wake.set()


SIGNALS = _Signals()


@event.listens_for(Engine, "before_cursor_execute")
def _note_outbox_insert(
    conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
) -> None:
    if statement[:12].lstrip()[:6].upper() != "INSERT":
        return
    match = _INSERT_INTO_OUTBOX.match(statement)
    if match:
        conn.info.setdefault(_WRITTEN, set()).add(match.group(1))


def announce(conn: Connection, schema: str) -> None:
    """Note outbox rows written by a path the hook cannot see (COPY): signal on commit."""
    conn.info.setdefault(_WRITTEN, set()).add(schema)


@event.listens_for(Engine, "commit")
def _notify_before_commit(conn: Connection) -> None:
    schemas: set[str] | None = conn.info.pop(_WRITTEN, None)
    if not schemas:
        return
    if conn.dialect.name == "postgresql":
        # In the committing transaction: delivered on commit, dropped on rollback.
        dbapi: Any = conn.connection.dbapi_connection  # psycopg's, on PostgreSQL
        with dbapi.cursor() as cursor:
            sender = os.getpid()  # read now: gunicorn forks its workers after import
            cursor.execute("; ".join(f"NOTIFY {channel(s)}, '{sender}'" for s in sorted(schemas)))
    pending: set[str] = getattr(_committed, "schemas", set())
    _committed.schemas = pending | schemas


@event.listens_for(Engine, "rollback")
def _forget_on_rollback(conn: Connection) -> None:
    conn.info.pop(_WRITTEN, None)


def _signal_committed(*_: Any) -> None:
    schemas: set[str] | None = getattr(_committed, "schemas", None)
    if schemas:
        _committed.schemas = set()
        held: set[str] | None = getattr(_held, "schemas", None)
        if held is not None:
            held |= schemas
        else:
            SIGNALS.fire(schemas)


@contextmanager
def signals_held() -> Iterator[set[str]]:
    """Within: this thread's commits wake no relay of this process; the schemas whose
    outbox they wrote are collected in the yielded set instead, for the caller to publish
    or `SIGNALS.fire` (docs/architecture.md § Hot paths). Not nested: an inner hold
    collects for the outer one."""
    outer: set[str] | None = getattr(_held, "schemas", None)
    if outer is not None:
        yield outer
        return
    held: set[str] = set()
    _held.schemas = held
    try:
        yield held
    finally:
        _held.schemas = None


# After the real COMMIT: a session's after_commit, or the connection's return to the pool
# (for Core `engine.begin()` blocks). Firing before the commit could let a relay look,
# find nothing yet, and sleep until its fallback poll.
event.listen(Session, "after_commit", _signal_committed)
event.listen(Pool, "checkin", _signal_committed)


class Wakeup:
    """What an outbox relay sleeps on: a commit in this process or a NOTIFY from another."""

    def __init__(self, schema: str, url: URL | None = None) -> None:
        self.schema = schema
        self._event = threading.Event()
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None
        SIGNALS.subscribe(schema, self._event)
        if url is not None and url.get_backend_name() == "postgresql":
            ready = threading.Event()
            self._listener = threading.Thread(
                target=self._listen,
                args=(url, ready),
                name=f"outbox-listen-{schema}",
                daemon=True,
            )
            self._listener.start()
            # LISTEN before the relay's first look, so no commit falls between the two.
            ready.wait(5.0)

    def clear(self) -> None:
        """Forget earlier signals: call before looking for rows."""
        self._event.clear()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Sleep until a signal, `stop` or `timeout`; True when signalled."""
        remaining = timeout
        while remaining > 0 and not stop.is_set():
            step = min(remaining, 0.2)  # stays responsive to `stop` (SIGTERM drains)
            if self._event.wait(step):
                return True
            remaining -= step
        return self._event.is_set()

    def close(self) -> None:
        """Stop listening."""
        SIGNALS.unsubscribe(self.schema, self._event)
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=2.0)

    def _listen(self, url: URL, ready: threading.Event) -> None:
        import psycopg

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.5
        while not self._closed.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {channel(self.schema)}")
                    ready.set()
                    self._event.set()  # anything committed while we were not listening
                    backoff = 0.5
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=0.5):
                            # This process's own commits woke the relay already (SIGNALS).
                            if note.payload != str(os.getpid()):
                                self._event.set()
            except Exception as exc:
                ready.set()
                log.warning("outbox_listen_failed", schema=self.schema, error=type(exc).__name__)
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 10.0)
