"""On PostgreSQL the relay prunes between rounds while it publishes (shared/retention.py):
old sent outbox rows, old processed-event records and chat_agent's old finished
deliveries (with their drop pushes) go, unsent, unfinished and recent ones stay, new events still go out, and
each table's batch is found by its index."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, text

from services.campaign_engine.models import Outbox, ProcessedEvent
from services.chat_agent.delivery.queue import FINISHED
from services.chat_agent.models import Outbox as ChatOutbox
from services.chat_agent.offers.asking import ASKED
from services.redemption_tracker.reports.final import FINAL_DECISIONS, FINAL_DELIVERIES
from shared.bus import InMemoryBroker
from shared.db import make_engine, make_session_factory, unit_of_work, utcnow
from shared.outbox import add_event
from shared.outbox_relay import OutboxRelay
from shared.retention import Aged, Pruner
from shared.rows import any_of
from tests.support.delivery_rows import kept_deliveries, kept_drop_pushes, write_deliveries
from tests.support.outbox_rows import kept_records, kept_rows, write_records, write_rows
from tests.support.waiting import running, wait_for


def test_the_running_relay_prunes_old_sent_rows_and_still_publishes(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url))
    now, day, key = utcnow(), timedelta(days=1), uuid.uuid4().hex
    # Long ago sent; sent yesterday; never sent (claimed and published by the relay).
    write_rows(sessions, key, [now - 40 * day] * 7 + [now - day], now)
    consumer, recent = f"test.{key[:8]}", uuid.uuid4()
    write_records(sessions, consumer, {uuid.uuid4(): now - 40 * day for _ in range(4)})
    write_records(sessions, consumer, {recent: now - day})
    topic = f"retention.{key[:8]}"
    with unit_of_work(sessions) as session:
        add_event(
            session,
            Outbox,
            "customer.opted_in",
            {"customer_id": "c_1"},
            key=key,
            producer="test",
            topic=topic,
        )
    broker = InMemoryBroker()
    window = timedelta(days=30)
    pruner = Pruner(sessions, Aged.of(Outbox, "sent_at"), window, batch_size=3)
    records = Pruner(sessions, Aged.of(ProcessedEvent, "processed_at"), window, batch_size=3)
    relay = OutboxRelay(
        sessions, Outbox, broker.producer(), poll_seconds=0.05, prune=[pruner, records]
    )
    with running(relay.run):
        wait_for(
            lambda: (
                len(kept_rows(sessions, key)) <= 2 and len(kept_records(sessions, consumer)) <= 1
            ),
            timeout=20,
            what="the old rows and records pruned",
        )
    kept = kept_rows(sessions, key)
    assert len(kept) == 2, "the seven old sent rows are gone, in batches of three"
    assert kept[0] == now - day and kept[1] is not None, "yesterday's row and the new event"
    assert len(broker.messages(topic)) == 1
    assert pruner.pruned >= 7
    assert kept_records(sessions, consumer) == [recent], "the four old records are gone"
    assert records.pruned >= 4


@pytest.mark.parametrize(
    ("aged", "index"),
    [
        (Aged.of(Outbox, "sent_at"), "ix_campaign_engine_outbox_sent_at"),
        (
            Aged.of(ProcessedEvent, "processed_at"),
            "ix_campaign_engine_processed_events_processed_at",
        ),
        (FINISHED, "ix_deliveries_finished_created_at"),
        (ASKED, "ix_offer_requests_created_at"),
        (FINAL_DECISIONS, "ix_rt_decisions_decided_at"),
        (FINAL_DELIVERIES, "ix_rt_deliveries_delivered_at"),
    ],
    ids=[
        "outbox",
        "processed_events",
        "deliveries",
        "offer_requests",
        "tracker_decisions",
        "tracker_deliveries",
    ],
)
def test_each_batch_is_found_by_its_index_not_a_scan_of_the_table(
    pg_url: str, aged: Aged, index: str
) -> None:
    """A pruner asks for the oldest rows once a minute on tables of millions: its query must
    be one PostgreSQL can answer from the age index (for the deliveries, the partial index
    of finished rows: the query's condition must imply the index's)."""
    sessions = make_session_factory(make_engine(pg_url))
    query = Pruner(sessions, aged, timedelta(days=30)).oldest(utcnow())
    with sessions() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: force the choice
        sql = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(session.scalars(text(f"EXPLAIN {sql}")))
    assert index in plan, plan


def test_a_deliverys_drop_push_is_found_by_its_unique_delivery_id(pg_url: str) -> None:
    """The drop pushes of a pruned batch are deleted by the deliveries' ids, one array
    parameter: by the unique index, not a scan of a table of a row per follower per drop."""
    sessions = make_session_factory(make_engine(pg_url))
    (dependent,) = FINISHED.dependents
    with sessions() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        doomed = any_of(session, dependent.column, [uuid.uuid4(), uuid.uuid4()])
        compiled = delete(dependent.column.table).where(doomed).compile(session.get_bind())
        explained = session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        plan = "\n".join(row[0] for row in explained)
    assert "uq_drop_pushes_delivery_id" in plan, plan


def test_the_running_chat_relay_prunes_finished_deliveries(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url))
    now, day, customer = utcnow(), timedelta(days=1), f"c_{uuid.uuid4().hex[:12]}"
    write_deliveries(
        sessions,
        customer,
        [("sent", now - 40 * day), ("pending", now - 40 * day)],
        drop_ids=["d-old-sent", "d-old-pending"],
    )
    write_deliveries(sessions, customer, [("failed", now - 40 * day), ("sent", now - day)])
    finished = Pruner(sessions, FINISHED, timedelta(days=30))
    relay = OutboxRelay(
        sessions, ChatOutbox, InMemoryBroker().producer(), poll_seconds=0.05, prune=[finished]
    )
    with running(relay.run):
        wait_for(lambda: len(kept_deliveries(sessions, customer)) <= 2, timeout=20, what="pruning")
    assert [status for status, _ in kept_deliveries(sessions, customer)] == ["pending", "sent"]
    assert kept_drop_pushes(sessions, customer) == ["d-old-pending"]  # went with its delivery
