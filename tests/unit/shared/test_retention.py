"""Sent outbox rows and processed-event records older than their retention are deleted, a
batch at a time; nothing else is, and no record while a consumed topic may keep its event
longer (shared/retention.py), on SQLite."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from services.campaign_engine.models import Outbox, ProcessedEvent
from shared.bus import InMemoryBroker, TopicConfigsUnknown
from shared.config import Settings
from shared.idempotency import first_time
from shared.outbox_relay import OutboxRelay, worker_relay
from shared.retention import Aged, Pruner, outlasts_topics, pruner
from tests.support.outbox_rows import (
    kept_records,
    kept_rows,
    write_records,
    write_rows,
)

Sessions = Callable[[], Session]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MS_A_DAY = 86_400_000


def _pruner(sqlite_sessions: Sessions, **over: Any) -> Pruner:
    return Pruner(sqlite_sessions, Aged.of(Outbox, "sent_at"), 7 * DAY, clock=lambda: NOW, **over)


def test_only_rows_sent_before_the_window_go(sqlite_sessions: Sessions) -> None:
    key = uuid.uuid4().hex
    write_rows(sqlite_sessions, key, [NOW - 9 * DAY, None, NOW - 6 * DAY, NOW - 8 * DAY, NOW], NOW)
    pruner = _pruner(sqlite_sessions)
    assert pruner.prune_batch() == 2
    assert kept_rows(sqlite_sessions, key) == [None, NOW - 6 * DAY, NOW]
    assert pruner.prune_batch() == 0 and pruner.pruned == 2


def test_an_unsent_row_stays_however_old(sqlite_sessions: Sessions) -> None:
    key = uuid.uuid4().hex
    write_rows(sqlite_sessions, key, [None, None], NOW - 30 * DAY)
    _pruner(sqlite_sessions).prune_batch()
    assert kept_rows(sqlite_sessions, key) == [None, None]


def test_a_backlog_goes_batch_after_batch_then_once_a_minute(sqlite_sessions: Sessions) -> None:
    key = uuid.uuid4().hex
    write_rows(sqlite_sessions, key, [NOW - 10 * DAY] * 5, NOW)
    pruner = _pruner(sqlite_sessions, batch_size=2, every_s=3600)
    # Full batches: due again at once; the short one ends the backlog.
    assert [pruner.maybe_prune() for _ in range(3)] == [2, 2, 1]
    assert kept_rows(sqlite_sessions, key) == []
    write_rows(sqlite_sessions, key, [NOW - 10 * DAY], NOW)
    assert pruner.maybe_prune() == 0, "not due again before every_s"
    assert kept_rows(sqlite_sessions, key) == [NOW - 10 * DAY]


def test_processed_events_older_than_the_window_go_and_recent_ones_still_refuse_a_repeat(
    sqlite_sessions: Sessions,
) -> None:
    consumer = f"test.{uuid.uuid4().hex[:8]}"
    old, recent = uuid.uuid4(), uuid.uuid4()
    write_records(sqlite_sessions, consumer, {old: NOW - 15 * DAY, recent: NOW - 13 * DAY})
    aged = Aged.of(ProcessedEvent, "processed_at")
    pruner = Pruner(sqlite_sessions, aged, 14 * DAY, clock=lambda: NOW)
    assert pruner.prune_batch() == 1
    assert kept_records(sqlite_sessions, consumer) == [recent]
    with sqlite_sessions() as session, session.begin():
        assert not first_time(session, ProcessedEvent, consumer, recent), "still a repeat"


def test_a_workers_relay_prunes_as_the_settings_say_and_zero_keeps_everything(
    sqlite_sessions: Sessions, tmp_path: Path
) -> None:
    def relay_for(**env: str) -> OutboxRelay:
        settings = Settings.from_env({**env, "TENIN_DATA_DIR": str(tmp_path)}, "campaign_engine")
        return worker_relay(
            sqlite_sessions, Outbox, InMemoryBroker(), settings, ProcessedEvent, consumed=[]
        )

    def windows(relay: OutboxRelay) -> dict[str, timedelta]:
        return {p.aged.name: p.retention for p in relay.pruners}

    assert windows(relay_for()) == {
        "campaign_engine.outbox": timedelta(days=7),
        "campaign_engine.processed_events": timedelta(days=15),
    }
    assert windows(
        relay_for(TENIN_OUTBOX_RETENTION_DAYS="2.5", TENIN_PROCESSED_EVENTS_RETENTION_DAYS="")
    ) == {
        "campaign_engine.outbox": timedelta(days=2.5),
        "campaign_engine.processed_events": timedelta(days=15),
    }
    off = relay_for(TENIN_OUTBOX_RETENTION_DAYS="0", TENIN_PROCESSED_EVENTS_RETENTION_DAYS="0")
    assert off.pruners == ()
    assert pruner(sqlite_sessions, Aged.of(Outbox, "sent_at"), None) is None


class _Lifetimes(InMemoryBroker):
    """The twin, saying what a broker may of its topics' record lifetimes (or that it
    cannot tell)."""

    def __init__(self, lifetimes: dict[str, int | None] | None) -> None:
        super().__init__()
        self.lifetimes, self.asked = lifetimes, 0

    def record_lifetime_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        self.asked += 1
        if self.lifetimes is None:
            raise TopicConfigsUnknown("stub does not describe topic configs")
        return {t: ms for t, ms in self.lifetimes.items() if t in topics}


def _records_pruner(sqlite_sessions: Sessions, broker: _Lifetimes, days: float) -> Pruner:
    aged = Aged.of(ProcessedEvent, "processed_at")
    check = outlasts_topics(broker, ["a", "b"], days)
    return Pruner(sqlite_sessions, aged, days * DAY, clock=lambda: NOW, allowed=check)


@pytest.mark.parametrize(
    ("lifetimes", "pruned"),
    [
        ({"a": 7 * MS_A_DAY, "b": 14 * MS_A_DAY}, 1),  # Kafka's defaults: 14 < 15 days
        ({"a": 7 * MS_A_DAY, "b": 15 * MS_A_DAY}, 0),  # as long as the window
        ({"a": 7 * MS_A_DAY, "b": None}, 0),  # b is kept for ever
        ({}, 1),  # the broker keeps no record past its offsets (the twin)
        (None, 1),  # the broker cannot tell (Tansu): pruned as configured, with a warning
    ],
    ids=["shorter", "as-long", "for-ever", "none-described", "cannot-tell"],
)
def test_records_are_pruned_only_if_they_outlast_every_consumed_topics_records(
    sqlite_sessions: Sessions,
    lifetimes: dict[str, int | None] | None,
    pruned: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    write_records(sqlite_sessions, consumer, {uuid.uuid4(): NOW - 20 * DAY, uuid.uuid4(): NOW})
    broker = _Lifetimes(lifetimes)
    records = _records_pruner(sqlite_sessions, broker, 15)
    caplog.set_level(logging.INFO)
    first = records.maybe_prune()
    assert records.maybe_prune() == 0, "not due again within a minute"
    assert broker.asked == 1, "asked once, before the first batch"
    assert (first >= 1) == bool(pruned)  # (other tests' old records may go too)
    assert len(kept_records(sqlite_sessions, consumer)) == 2 - pruned
    assert records.off == (not pruned)
    # Where structlog renders depends on the logging set-up: the records or the streams.
    logged = caplog.text + "".join(capfd.readouterr())
    assert ("processed_events_window_too_short" in logged) == (not pruned), logged
    assert ("topic_lifetime_unknown" in logged) == (lifetimes is None), logged


class _Unreachable(_Lifetimes):
    """A broker that does not answer now, and does later."""

    def record_lifetime_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        if not self.asked:
            self.asked += 1
            raise ConnectionError("broker down")
        return super().record_lifetime_ms(topics)


def test_a_broker_that_does_not_answer_is_asked_again_when_the_next_batch_is_due(
    sqlite_sessions: Sessions,
) -> None:
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    write_records(sqlite_sessions, consumer, {uuid.uuid4(): NOW - 20 * DAY})
    broker = _Unreachable({"a": 14 * MS_A_DAY})
    records = _records_pruner(sqlite_sessions, broker, 15)
    records.every_s = 0.0  # every call is due
    assert records.maybe_prune() == 0 and not records.off, "no answer: nothing decided"
    assert len(kept_records(sqlite_sessions, consumer)) == 1
    records.maybe_prune()
    assert broker.asked == 2 and records.allowed is None, "answered the second time"
    assert kept_records(sqlite_sessions, consumer) == []


def test_a_workers_relay_asks_about_the_topics_its_service_consumes(
    sqlite_sessions: Sessions, tmp_path: Path
) -> None:
    settings = Settings.from_env({"TENIN_DATA_DIR": str(tmp_path)}, "campaign_engine")
    broker = _Lifetimes({"offer.requests": 30 * MS_A_DAY, "elsewhere": None})
    relay = worker_relay(
        sqlite_sessions,
        Outbox,
        broker,
        settings,
        ProcessedEvent,
        consumed=["offer.requests"],
    )
    records = next(p for p in relay.pruners if p.aged.name.endswith("processed_events"))
    records.maybe_prune()
    assert records.off, "offer.requests keeps its records 30 days, the window is 15"
