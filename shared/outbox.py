"""The transactional outbox: events are written with the state change, then relayed.

Each service declares its own outbox table (in its own schema) with `OutboxMixin` (and
`unsent_index`). `add_event` writes a row in the caller's business transaction
(`outbox_rows` builds a batch's rows for a multi-row insert); the relay
(shared.outbox_relay) publishes the committed rows and marks them sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple, cast

import structlog
from pydantic import TypeAdapter
from pydantic_core import to_json
from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

# Imported for its hooks: a commit that wrote outbox rows wakes the relays (NOTIFY on
# PostgreSQL), in every process that writes events, relay or not.
from shared import outbox_wake  # noqa: F401
from shared.db import UTCDateTime, utcnow
from shared.events import (
    SCHEMAS,
    TOPIC_OF_TYPE,
    Envelope,
    EventSchemaError,
    Strict,
    encode,
    make_event,
)
from shared.ids import random_uuid
from shared.rows import RowWriter

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
    # The envelope's type, sent as the record's `type` header (shared.events.codec): a
    # consumer skips a type it does not apply without decoding it. NULL in rows written
    # before migration 0017: sent without the header.
    event_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


def unsent_index(model: type[OutboxMixin]) -> Index:
    """A partial index of an outbox's unsent rows in id order, which is what the relay's
    claim reads: without it PostgreSQL walked the primary key past every row already sent
    (a drop's reports left ~90,000 in chat_agent's outbox: ~50 ms a claim by its end)."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]  # the mapped subclass
    unsent = table.c.sent_at.is_(None)
    return Index(
        f"ix_{table.schema}_outbox_unsent",
        table.c.id,
        postgresql_where=unsent,
        sqlite_where=unsent,
    )


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
    # Written at once, in one prepared statement (shared/rows.py), not at the ORM's flush:
    # every event a handler announces paid for the unit of work's machinery.
    outbox_writer(outbox_model).write(session.connection(), [envelope_row(envelope, topic)])
    return envelope


def envelope_row(envelope: Envelope, topic: str | None = None) -> dict[str, Any]:
    """An envelope as an outbox row (OUTBOX_COLUMNS), for its type's topic unless told."""
    return {
        "event_id": envelope.event_id,
        "topic": topic or TOPIC_OF_TYPE[envelope.type],
        "key": envelope.key,
        "body": encode(envelope).decode("utf-8"),
        "event_type": envelope.type,
        "created_at": utcnow(),
    }


# The columns an outbox row is written with (`created_at` too: shared/rows.py's
# one-statement INSERT applies no Python-side default).
OUTBOX_COLUMNS = ("event_id", "topic", "key", "body", "event_type", "created_at")
_WRITERS: dict[type, RowWriter] = {}


def outbox_writer(outbox_model: type[OutboxMixin]) -> RowWriter:
    """Writes rows of OUTBOX_COLUMNS to a service's outbox in one statement (built once)."""
    writer = _WRITERS.get(outbox_model)
    if writer is None:  # two threads may both build it: the same writer
        table = cast(Table, outbox_model.__table__)  # type: ignore[attr-defined]  # mapped subclass
        writer = _WRITERS[outbox_model] = RowWriter(table, OUTBOX_COLUMNS)
    return writer


class Draft(NamedTuple):
    """An event to be written by `outbox_rows`: its type, key and payload."""

    type: str
    key: str
    payload: dict[str, Any]


_VERSION = 1


@cache
def _payloads(event_type: str) -> TypeAdapter[list[Strict]]:
    schema = SCHEMAS[(event_type, _VERSION)]
    return TypeAdapter(list[schema])  # type: ignore[valid-type]  # the schema is looked up at run time


def outbox_rows(
    drafts: Sequence[Draft], producer: str, created_at: datetime | None = None
) -> list[dict[str, Any]]:
    """A batch's events as outbox rows (the table's columns), in draft order: what
    `add_event` writes one at a time, for a hot path that writes many at once.

    The payloads of one type are validated against their registered schema in one call
    and each envelope is serialised directly, the very bytes `encode(make_event(...))`
    gives (a unit test holds them equal), without an `Envelope` model per event
    (docs/architecture.md § Hot paths). Raises EventSchemaError, as `make_event` does,
    when a payload breaks its schema.
    """
    checked: list[Any] = [None] * len(drafts)
    by_type: dict[str, list[int]] = {}
    for i, d in enumerate(drafts):
        by_type.setdefault(d.type, []).append(i)
    for event_type, at in by_type.items():
        adapter = _payloads(event_type)
        try:
            models = adapter.validate_python([drafts[i].payload for i in at])
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise EventSchemaError(f"invalid {event_type} payload: {exc}") from exc
        for i, dumped in zip(at, adapter.dump_python(models, mode="json"), strict=True):
            checked[i] = dumped
    occurred_at, created_at = datetime.now(UTC), created_at or utcnow()
    rows = []
    for d, payload in zip(drafts, checked, strict=True):
        event_id = random_uuid()
        envelope = {
            "event_id": event_id,
            "type": d.type,
            "version": _VERSION,
            "occurred_at": occurred_at,
            "producer": producer,
            "key": d.key,
            "payload": payload,
        }
        rows.append(
            {
                "event_id": event_id,
                "topic": TOPIC_OF_TYPE[d.type],
                "key": d.key,
                "body": to_json(envelope).decode(),
                "event_type": d.type,
                "created_at": created_at,
                "sent_at": None,
            }
        )
    return rows
