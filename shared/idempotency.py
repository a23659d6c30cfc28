"""Processed-event records: how a consumer applies each event effectively once.

A handler records the `event_id` it applied in the same transaction as the effect; a
redelivered event finds its record and changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid, select
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

    The primary key makes the record race-free: two transactions applying the same event
    at once collide on insert and one of them rolls back.
    """
    existing = session.execute(
        select(model.event_id).where(model.consumer == consumer, model.event_id == event_id)
    ).first()
    if existing is not None:
        return False
    # A mixin has no constructor of its own; the mapped subclass takes columns as keywords.
    session.add(model(consumer=consumer, event_id=event_id))  # type: ignore[call-arg]
    session.flush()
    return True
