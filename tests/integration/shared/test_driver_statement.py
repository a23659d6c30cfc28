"""Statements run on the transaction's own psycopg connection (shared.db.DriverStatement,
the decision batch's RowWriter) behave as SQLAlchemy's would: same rows, same transaction,
and an outbox write still wakes its relay (docs/architecture.md § Hot paths)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ARRAY, String, Table, any_, bindparam, delete, func, select

from services.campaign_engine.models import Customer, Outbox
from shared.db import DriverStatement, make_engine, make_session_factory, unit_of_work
from shared.events import encode, make_event
from shared.outbox_wake import Wakeup
from shared.rows import RowWriter

CUSTOMERS = cast(Table, Customer.__table__)
OUTBOX = cast(Table, Outbox.__table__)
FOUND = (
    select(Customer.customer_id, Customer.opted_out)
    .where(Customer.customer_id == any_(bindparam("ids", type_=ARRAY(String))))
    .where(Customer.updated_at <= bindparam("now"))
    .order_by(Customer.customer_id)
)


def _customers(n: int) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    at = datetime.now(UTC) - timedelta(minutes=1)
    return [
        {"customer_id": f"c_{tag}_{i}", "opted_out": i % 2 == 0, "updated_at": at} for i in range(n)
    ]


def test_rows_are_what_sqlalchemy_gives_for_array_and_datetime_binds(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url, pool_size=1))
    rows = _customers(4)
    with unit_of_work(sessions) as session:
        session.execute(CUSTOMERS.insert(), rows)
    params = {"ids": [r["customer_id"] for r in rows[:3]] + ["c_absent"], "now": datetime.now(UTC)}
    with sessions() as session, session.begin():
        direct = DriverStatement(FOUND).rows(session.connection(), params)
        usual = [tuple(r) for r in session.execute(FOUND, params)]
    assert direct == usual
    assert [r[0] for r in direct] == sorted(r["customer_id"] for r in rows[:3])


def test_a_write_belongs_to_the_callers_transaction(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url, pool_size=1))
    writer = RowWriter(CUSTOMERS, ("customer_id", "opted_out", "updated_at"))
    kept, dropped = _customers(2), _customers(2)
    with sessions() as session, session.begin():
        writer.write(session.connection(), kept)
    with sessions() as session:
        session.begin()
        writer.write(session.connection(), dropped)
        session.rollback()
    ids = [r["customer_id"] for r in kept + dropped]
    with sessions() as session:
        stored = session.scalars(select(Customer.customer_id).where(Customer.customer_id.in_(ids)))
        assert sorted(stored) == sorted(r["customer_id"] for r in kept)


def test_an_outbox_write_wakes_the_relay_on_commit_only(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url, pool_size=1))
    writer = RowWriter(OUTBOX, ("event_id", "topic", "key", "body", "created_at"))
    wake, stop = Wakeup(OUTBOX.schema or "main"), threading.Event()
    topic = f"driver.{uuid.uuid4().hex[:8]}"

    def rows() -> list[dict[str, Any]]:
        at = datetime.now(UTC)
        event = make_event("customer.opted_in", {"customer_id": "c_1"}, key="c_1", producer="t")
        body = encode(event).decode()
        return [
            {
                "event_id": event.event_id,
                "topic": topic,
                "key": "c_1",
                "body": body,
                "created_at": at,
            }
        ]

    try:
        with sessions() as session:
            session.begin()
            writer.write(session.connection(), rows())
            session.rollback()
        assert not wake.wait(0.3, stop)  # rolled back: nothing to relay
        with sessions() as session, session.begin():
            written = rows()
            writer.write(session.connection(), written)
        assert wake.wait(2.0, stop)
        with sessions() as session:
            n = session.scalar(
                select(func.count()).where(Outbox.event_id == written[0]["event_id"])
            )
            assert n == 1
    finally:
        wake.close()
        with unit_of_work(sessions) as session:  # not for the other tests' relays
            session.execute(delete(Outbox).where(Outbox.topic == topic))
