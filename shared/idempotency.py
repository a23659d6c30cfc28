"""Processed-event records: how a consumer applies each event effectively once.

A handler records the `event_id` it applied in the same transaction as the effect; a
redelivered event finds its record and changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table, Uuid
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import UTCDateTime, utcnow


class ProcessedEventMixin:
    """A processed-events table; a service adds only its schema (`__table_args__`)."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def first_time(
    session: Session, model: type[ProcessedEventMixin], consumer: str, event_id: uuid.UUID
) -> bool:
    """Record the event as applied; False if this consumer already applied it.

    One round trip: `INSERT … ON CONFLICT DO NOTHING RETURNING`. The primary key makes it
    race-free: a transaction applying the same event at the same time waits on the first
    one's row and, once that commits, finds it (False); if that rolls back, it records it.
    """
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]  # a mapped subclass's
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(table.c.event_id)
    )
    return session.execute(statement).first() is not None
