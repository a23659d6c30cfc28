"""chat_agent deliveries written straight to the table, in a chosen status and created at
a chosen time, each a drop's push if asked: for the delivery retention tests
(shared/retention.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.chat_agent.delivery.queue import delivery_row
from services.chat_agent.models import Delivery, DropPush


def write_deliveries(
    sessions: Callable[[], Session],
    customer: str,
    rows: Sequence[tuple[str, datetime]],
    *,
    drop_ids: Sequence[str] = (),
) -> None:
    """One push to `customer` per (status, created_at); the i-th is drop_ids[i]'s push
    (its `drop_pushes` row) when drop_ids are given."""
    values = [
        {
            **delivery_row(
                customer_id=customer,
                line_user_id="U" + customer,
                kind="drop_coupon",
                messages=[{"type": "text", "text": "hello"}],
                now=created_at,
            ),
            "status": status,
        }
        for status, created_at in rows
    ]
    pushes = [
        {
            "drop_id": drop_id,
            "customer_id": customer,
            "delivery_id": row["delivery_id"],
            "request_id": f"drop:{drop_id}:{customer}",
        }
        for drop_id, row in zip(drop_ids, values, strict=bool(drop_ids))
    ]
    with sessions() as session, session.begin():
        session.execute(insert(Delivery), values)
        if pushes:
            session.execute(insert(DropPush), pushes)


def kept_deliveries(sessions: Callable[[], Session], customer: str) -> list[tuple[str, datetime]]:
    """(status, created_at) of `customer`'s deliveries still in the table, oldest first."""
    with sessions() as session:
        query = (
            select(Delivery.status, Delivery.created_at)
            .where(Delivery.customer_id == customer)
            .order_by(Delivery.created_at, Delivery.status)
        )
        return [(status, at) for status, at in session.execute(query)]


def kept_drop_pushes(sessions: Callable[[], Session], customer: str) -> list[str]:
    """The drops whose push to `customer` is still in `drop_pushes`, sorted."""
    with sessions() as session:
        query = select(DropPush.drop_id).where(DropPush.customer_id == customer)
        return sorted(session.scalars(query))
