"""The outbox relay is woken by a commit, not by its poll (docs/architecture.md § Hot paths).

SQLite and the in-memory bus: the signal inside the process is the only wake-up here, so
a relay whose fallback poll is 60 s must still publish within a fraction of a second.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from services.chat_agent.models import Outbox
from shared.bus import InMemoryBroker
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.outbox import add_event
from shared.outbox_relay import OutboxRelay
from shared.outbox_wake import Wakeup

FALLBACK_POLL_S = 60.0


@pytest.fixture
def sessions(sqlite_url: str):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(sqlite_url))


@pytest.fixture
def running(sessions) -> Iterator[tuple[InMemoryBroker, OutboxRelay]]:  # type: ignore[no-untyped-def]
    broker = InMemoryBroker()
    relay = OutboxRelay(sessions, Outbox, broker.producer(), poll_seconds=FALLBACK_POLL_S)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(0.3)  # let the relay make its first (empty) pass and go to sleep
    yield broker, relay
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the relay stops promptly on stop (SIGTERM)"


def _commit(sessions, topic: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as session:
        envelope = add_event(
            session,
            Outbox,
            "customer.opted_in",
            {"customer_id": "c_w"},
            key="c_w",
            producer="test",
            topic=topic,
        )
    return envelope.event_id


def _arrival(broker: InMemoryBroker, topic: str, n: int, limit_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if len(broker.messages(topic)) >= n:
            return time.monotonic() - start
        time.sleep(0.002)
    return float("inf")


def test_a_commit_wakes_the_relay_long_before_its_fallback_poll(sessions, running) -> None:  # type: ignore[no-untyped-def]
    broker, _relay = running
    topic = f"wake.{uuid.uuid4().hex[:6]}"
    delays = []
    for i in range(5):
        _commit(sessions, topic)
        delays.append(_arrival(broker, topic, i + 1, limit_s=5.0))
    assert max(delays) < 1.0, (
        f"published after {delays} s; the fallback poll is {FALLBACK_POLL_S} s"
    )
    assert len(broker.messages(topic)) == 5, "each row published once"


def test_a_rolled_back_transaction_gives_no_signal(sessions) -> None:  # type: ignore[no-untyped-def]
    wake = Wakeup("chat_agent")
    try:
        with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
            add_event(
                session,
                Outbox,
                "customer.opted_in",
                {"customer_id": "c_r"},
                key="c_r",
                producer="test",
            )
            session.flush()
            raise RuntimeError("rolled back")
        assert not wake.wait(0.2, threading.Event())
        _commit(sessions, "wake.committed")
        assert wake.wait(0.2, threading.Event()), "a committed outbox row signals"
    finally:
        wake.close()


def test_a_commit_in_another_schema_does_not_wake_this_relay(sessions) -> None:  # type: ignore[no-untyped-def]
    wake = Wakeup("campaign_engine")
    try:
        _commit(sessions, "wake.elsewhere")  # chat_agent's outbox
        assert not wake.wait(0.2, threading.Event())
    finally:
        wake.close()
