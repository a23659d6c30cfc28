"""Outbox relay, processed events and API keys on SQLite with the in-memory bus twin."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.chat_agent.models import Outbox, ProcessedEvent
from shared.auth import authenticate, create_key, revoke_key
from shared.bus import InMemoryBroker
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events import decode
from shared.idempotency import first_time
from shared.outbox import add_event
from shared.outbox_relay import OutboxRelay

SECRET = "unit-test-secret"


@pytest.fixture
def sessions(sqlite_url: str):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(sqlite_url))


def test_committed_events_are_relayed_once_and_rolled_back_ones_never(sessions) -> None:  # type: ignore[no-untyped-def]
    topic = f"t.{uuid.uuid4().hex[:6]}"
    broker = InMemoryBroker()
    with unit_of_work(sessions) as session:
        kept = add_event(
            session,
            Outbox,
            "customer.opted_in",
            {"customer_id": "c_1"},
            key="c_1",
            producer="test",
            topic=topic,
        )
    with pytest.raises(ValueError), unit_of_work(sessions) as session:
        add_event(
            session,
            Outbox,
            "customer.opted_in",
            {"customer_id": "c_2"},
            key="c_2",
            producer="test",
            topic=topic,
        )
        raise ValueError("rolled back")
    relay = OutboxRelay(sessions, Outbox, broker.producer())
    assert relay.relay_once() >= 1
    assert relay.relay_once() == 0, "sent rows are not published again"
    wire = [decode(m.value) for m in broker.messages(topic)]
    assert [e.event_id for e in wire] == [kept.event_id]
    with sessions() as session:
        row = session.execute(select(Outbox).where(Outbox.event_id == kept.event_id)).scalar_one()
        assert row.sent_at is not None


def test_an_invalid_event_is_never_written(sessions) -> None:  # type: ignore[no-untyped-def]
    from shared.events import EventSchemaError

    with pytest.raises(EventSchemaError), unit_of_work(sessions) as session:
        add_event(session, Outbox, "customer.opted_in", {"customer": "typo"}, key="k", producer="t")


def test_processed_events_make_a_handler_effectively_once(sessions) -> None:  # type: ignore[no-untyped-def]
    event_id = uuid.uuid4()
    results = []
    for _ in range(3):
        with unit_of_work(sessions) as session:
            results.append(first_time(session, ProcessedEvent, "unit", event_id))
    assert results == [True, False, False]


def test_api_keys_are_hashed_role_bound_and_revocable(sessions) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as session:
        key = create_key(session, SECRET, "pos", store_id="S001")
    key_id = key.split("_")[1]
    with sessions() as session:
        principal = authenticate(session, SECRET, key)
        assert principal is not None and principal.role == "pos" and principal.store_id == "S001"
        assert authenticate(session, SECRET, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert authenticate(session, "another-server-secret", key) is None
        assert authenticate(session, SECRET, "tn_nope_nope") is None
        assert authenticate(session, SECRET, "garbage") is None
        from shared.auth import ApiKey

        stored = session.get(ApiKey, key_id)
        assert stored is not None and key.split("_", 2)[2] not in stored.secret_hash
    with unit_of_work(sessions) as session:
        assert revoke_key(session, key_id)
    with sessions() as session:
        assert authenticate(session, SECRET, key) is None
    with pytest.raises(ValueError, match="store"), unit_of_work(sessions) as session:
        create_key(session, SECRET, "pos")
