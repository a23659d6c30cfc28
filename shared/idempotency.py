"""Processed-event records: how a consumer applies each event effectively once.

A handler records the `event_id` it applied in the same transaction as the effect; a
redelivered event finds its record and changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Insert, String, Table, Uuid, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import HotStatement, UTCDateTime, utcnow


class ProcessedEventMixin:
    """A processed-events table; a service adds only its schema (`__table_args__`)."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def first_time(
    session: Session, model: type[ProcessedEventMixin], consumer: str, event_id: uuid.UUID
) -> bool:
    """Record the event as applied; False if this consumer already applied it.

    One round trip: `INSERT … ON CONFLICT DO NOTHING RETURNING`. The primary key makes it
    race-free: a transaction applying the same event at the same time waits on the first
    one's row and, once that commits, finds it (False); if that rolls back, it records it.
    The statement is built once per table and runs as a `shared.db.HotStatement`: every
    handled event pays for it.
    """
    params = {"consumer": consumer, "event_id": event_id, "processed_at": utcnow()}
    return bool(_record_statement(model).rows(session.connection(), params))


_BUILT: dict[type, HotStatement] = {}


def _record_statement(model: type[ProcessedEventMixin]) -> HotStatement:
    built = _BUILT.get(model)
    if built is None:  # two threads may both build it: the same statement
        built = _BUILT[model] = HotStatement(_insert(model))
    return built


def _insert(model: type[ProcessedEventMixin]) -> Insert:
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]  # a mapped subclass's
    # PostgreSQL's and SQLite's INSERT … ON CONFLICT compile the same for either.
    return cast(
        Insert,
        postgresql.insert(table)
        .values(
            consumer=bindparam("consumer"),
            event_id=bindparam("event_id"),
            processed_at=bindparam("processed_at"),
        )
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(table.c.event_id),
    )
