"""Outbox rows written straight to a table, sent (or not) at a chosen time: for the
retention tests (shared/outbox_retention.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import Outbox


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
