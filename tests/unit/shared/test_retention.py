"""Sent outbox rows and processed-event records older than their retention are deleted, a
batch at a time; nothing else is (shared/retention.py), on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.campaign_engine.models import Outbox, ProcessedEvent
from shared.bus import InMemoryBroker
from shared.config import Settings
from shared.idempotency import first_time
from shared.outbox_relay import OutboxRelay, worker_relay
from shared.retention import Aged, Pruner, pruner
from tests.support.outbox_rows import (
    kept_records,
    kept_rows,
    write_records,
    write_rows,
)

Sessions = Callable[[], Session]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


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
            sqlite_sessions, Outbox, InMemoryBroker().producer(), settings, ProcessedEvent
        )

    def windows(relay: OutboxRelay) -> dict[str, timedelta]:
        return {p.aged.name: p.retention for p in relay.pruners}

    assert windows(relay_for()) == {
        "campaign_engine.outbox": timedelta(days=7),
        "campaign_engine.processed_events": timedelta(days=14),
    }
    assert windows(
        relay_for(TENIN_OUTBOX_RETENTION_DAYS="2.5", TENIN_PROCESSED_EVENTS_RETENTION_DAYS="")
    ) == {
        "campaign_engine.outbox": timedelta(days=2.5),
        "campaign_engine.processed_events": timedelta(days=14),
    }
    off = relay_for(TENIN_OUTBOX_RETENTION_DAYS="0", TENIN_PROCESSED_EVENTS_RETENTION_DAYS="0")
    assert off.pruners == ()
    assert pruner(sqlite_sessions, Aged.of(Outbox, "sent_at"), None) is None
