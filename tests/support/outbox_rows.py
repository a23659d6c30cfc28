"""Outbox rows written straight to a table, sent (or not) at a chosen time, and processed-
event records applied at a chosen time: for the retention tests (shared/retention.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import Outbox, ProcessedEvent


def write_rows(
    sessions: Callable[[], Session], key: str, sent_at: Sequence[datetime | None], now: datetime
) -> None:
    """One row per entry of `sent_at` (None: not sent yet), all under `key`."""
    rows = [
        {
            "event_id": uuid.uuid4(),
            "topic": "retention.test",
            "key": key,
            "body": "{}",
            "created_at": now,
            "sent_at": at,
        }
        for at in sent_at
    ]
    with sessions() as session, session.begin():
        session.execute(insert(Outbox), rows)


def kept_rows(sessions: Callable[[], Session], key: str) -> list[datetime | None]:
    """The `sent_at` of the rows under `key` still in the table, oldest id first."""
    with sessions() as session:
        query = select(Outbox.sent_at).where(Outbox.key == key).order_by(Outbox.id)
        return list(session.scalars(query))


def write_records(
    sessions: Callable[[], Session], consumer: str, processed_at: Mapping[uuid.UUID, datetime]
) -> None:
    """A processed-event record of `consumer` per event id, applied at the time given."""
    rows = [
        {"consumer": consumer, "event_id": event_id, "processed_at": at}
        for event_id, at in processed_at.items()
    ]
    with sessions() as session, session.begin():
        session.execute(insert(ProcessedEvent), rows)


def kept_records(sessions: Callable[[], Session], consumer: str) -> list[uuid.UUID]:
    """The event ids of `consumer`'s records still in the table, oldest first."""
    with sessions() as session:
        query = (
            select(ProcessedEvent.event_id)
            .where(ProcessedEvent.consumer == consumer)
            .order_by(ProcessedEvent.processed_at)
        )
        return list(session.scalars(query))
