"""Small database helpers for bulk, race-safe writes on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from shared.events import TOPIC_OF_TYPE, Strict, encode, make_event


def insert_ignore(
    session: Session, model: Any, conflict: Sequence[str], where: ColumnElement[bool] | None = None
) -> Any:
    """INSERT … ON CONFLICT (conflict) [WHERE …] DO NOTHING, in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing(index_elements=list(conflict), index_where=where)


def lock_rows(
    session: Session, model: Any, key: InstrumentedAttribute[Any], keys: Sequence[Any]
) -> list[Any]:
    """SELECT … FOR UPDATE in key order (a fixed order cannot deadlock with itself).

    SQLite has no row locks; there every write transaction is BEGIN IMMEDIATE (shared.db),
    which serialises writers anyway.
    """
    if not keys:
        return []
    return list(
        session.execute(
            select(model).where(key.in_(list(keys))).order_by(key).with_for_update()
        ).scalars()
    )


def outbox_row(
    event_type: str, payload: Strict | dict[str, Any], *, key: str, producer: str
) -> dict[str, Any]:
    """A validated event as an outbox row, for a bulk insert (shared.outbox.add_event's row)."""
    envelope = make_event(event_type, payload, key=key, producer=producer)
    return {
        "event_id": envelope.event_id,
        "topic": TOPIC_OF_TYPE[event_type],
        "key": key,
        "body": encode(envelope).decode("utf-8"),
    }
