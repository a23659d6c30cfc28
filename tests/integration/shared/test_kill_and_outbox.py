"""Effectively-once under crashes, on real Kafka and PostgreSQL.

- a consumer SIGKILLed after handling but before committing gets the message again, and
  the idempotent handler leaves the effect exactly once;
- a rolled-back business transaction publishes nothing;
- a committed one is published even if the relay crashes between publishing and marking
  the row sent: a duplicate on the wire, still one effect.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from services.campaign_engine.models import Outbox, ProcessedEvent
from shared.bus import KAFKA_PROFILE, KafkaBroker, Producer
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events import decode, encode, make_event
from shared.idempotency import first_time
from shared.outbox import add_event
from shared.outbox_relay import OutboxRelay
from tests.support.brokers import drain, poll_quietly

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def kafka(real_services: dict[str, str]) -> KafkaBroker:
    return KafkaBroker(real_services["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_PROFILE)


@pytest.fixture
def sessions(pg_url: str):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(pg_url))


def test_a_killed_consumer_gets_the_message_again_and_applies_it_once(
    kafka: KafkaBroker,
    pg_url: str,
    sessions,
    unique: str,  # type: ignore[no-untyped-def]
) -> None:
    topic, group, table = f"kill.{unique}", f"killtest.{unique}", f"killtest_{unique}"
    with unit_of_work(sessions) as session:
        session.execute(text(f"CREATE TABLE {table} (event_id text)"))
        session.execute(text(f"CREATE TABLE {table}_deliveries (event_id text)"))
    kafka.ensure_topics([topic])
    envelope = make_event("customer.opted_out", {"customer_id": "c_k"}, key="c_k", producer="t")
    producer = kafka.producer()
    producer.send(topic, "c_k", encode(envelope))
    producer.flush()
    producer.close()

    def run(mode: str) -> int:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.support.kill_consumer",
                pg_url,
                kafka.bootstrap,
                topic,
                group,
                table,
                mode,
            ],
            cwd=REPO,
            timeout=120,
        ).returncode

    assert run("kill-after-handle") == -9  # died by SIGKILL before committing the offset
    assert run("normal") == 0  # the message came back and the consumer finished

    with sessions() as session:
        deliveries = session.execute(text(f"SELECT count(*) FROM {table}_deliveries")).scalar()
        effects = session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        recorded = (
            session.execute(select(ProcessedEvent).where(ProcessedEvent.consumer == group))
            .scalars()
            .all()
        )
    assert deliveries == 2, "the killed consumer's message must be delivered again"
    assert effects == 1, "the effect must happen exactly once"
    assert [r.event_id for r in recorded] == [envelope.event_id]


def _add(session, topic: str, customer: str):  # type: ignore[no-untyped-def]
    return add_event(
        session,
        Outbox,
        "customer.opted_out",
        {"customer_id": customer},
        key=customer,
        producer="test",
        topic=topic,
    )


def test_a_rolled_back_transaction_publishes_nothing(
    kafka: KafkaBroker,
    sessions,
    unique: str,  # type: ignore[no-untyped-def]
) -> None:
    topic = f"outbox.rollback.{unique}"
    kafka.ensure_topics([topic])
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        rolled_back = _add(session, topic, "c_rolled_back")
        raise RuntimeError("business rule failed after the event was written")
    with unit_of_work(sessions) as session:
        committed = _add(session, topic, "c_committed")
    relay = OutboxRelay(sessions, Outbox, kafka.producer())
    while relay.relay_once():
        pass
    consumer = kafka.consumer(f"g.{unique}", [topic])
    try:
        got = drain(consumer, 1) + poll_quietly(consumer, 2.0)
    finally:
        consumer.close()
    ids = [decode(m.value).event_id for m in got]
    assert ids == [committed.event_id]
    assert rolled_back.event_id not in ids


class CrashAfterPublish:
    """A producer that reaches the broker, then 'crashes' before the row is marked sent."""

    def __init__(self, inner: Producer) -> None:
        self.inner = inner

    def send(self, topic: str, key: str | None, value: bytes, headers=()) -> None:  # type: ignore[no-untyped-def]
        self.inner.send(topic, key, value, headers)

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout)
        raise SystemExit("relay process died after the broker acknowledged")

    def close(self) -> None:
        self.inner.close()


def test_a_relay_crash_after_publishing_duplicates_on_the_wire_but_not_in_effect(
    kafka: KafkaBroker,
    sessions,
    unique: str,  # type: ignore[no-untyped-def]
) -> None:
    topic = f"outbox.crash.{unique}"
    kafka.ensure_topics([topic])
    with unit_of_work(sessions) as session:
        envelope = _add(session, topic, "c_crash")

    crashing = OutboxRelay(sessions, Outbox, CrashAfterPublish(kafka.producer()))
    with pytest.raises(SystemExit):
        crashing.relay_once()
    with sessions() as session:
        row = session.execute(
            select(Outbox).where(Outbox.event_id == envelope.event_id)
        ).scalar_one()
        assert row.sent_at is None, "the crash happened before the row was marked"

    restarted = OutboxRelay(sessions, Outbox, kafka.producer())
    while restarted.relay_once():
        pass
    with sessions() as session:
        row = session.execute(
            select(Outbox).where(Outbox.event_id == envelope.event_id)
        ).scalar_one()
        assert row.sent_at is not None

    consumer = kafka.consumer(f"g.{unique}", [topic])
    try:
        wire = drain(consumer, 2) + poll_quietly(consumer, 1.0)
    finally:
        consumer.close()
    assert [decode(m.value).event_id for m in wire] == [envelope.event_id] * 2

    effects = 0
    for message in wire:
        with unit_of_work(sessions) as session:
            if first_time(
                session,
                ProcessedEvent,
                f"crash.{unique}",
                uuid.UUID(str(decode(message.value).event_id)),
            ):
                effects += 1
    assert effects == 1
    assert json.loads(wire[0].value)["payload"] == {"customer_id": "c_crash"}
