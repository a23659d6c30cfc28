"""chat_agent's finished deliveries (sent, failed, cancelled) older than
TENIN_DELIVERY_RETENTION_DAYS are deleted, pending and held ones never (shared/retention.py,
delivery/queue.FINISHED), on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from services.chat_agent.delivery.queue import FINISHED
from services.chat_agent.worker import outbox_relay
from shared.config import Settings
from shared.retention import Pruner, pruner
from tests.support.delivery_rows import kept_deliveries, write_deliveries
from tests.unit.chat_agent.conftest import Harness

Sessions = Callable[[], Session]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_finished_deliveries_older_than_the_window_go_and_unfinished_ones_never(
    sqlite_sessions: Sessions,
) -> None:
    customer = f"c_{uuid.uuid4().hex[:12]}"
    old, recent = NOW - 31 * DAY, NOW - 29 * DAY
    write_deliveries(
        sqlite_sessions,
        customer,
        [
            ("sent", old),
            ("failed", old - DAY),
            ("cancelled", old - 2 * DAY),
            ("pending", old - 3 * DAY),  # still due: never pruned, whatever its age
            ("held", old - 4 * DAY),  # waiting for its drop's rules
            ("sent", recent),
        ],
    )
    finished = Pruner(sqlite_sessions, FINISHED, 30 * DAY, clock=lambda: NOW, batch_size=2)
    assert [finished.prune_batch() for _ in range(3)] == [2, 1, 0], "oldest first, in batches"
    assert kept_deliveries(sqlite_sessions, customer) == [
        ("held", old - 4 * DAY),
        ("pending", old - 3 * DAY),
        ("sent", recent),
    ]


def test_the_window_comes_from_settings_and_zero_keeps_everything(
    sqlite_sessions: Sessions, tmp_path: Path
) -> None:
    def days(value: str) -> float | None:
        env = {"TENIN_DELIVERY_RETENTION_DAYS": value, "TENIN_DATA_DIR": str(tmp_path)}
        return Settings.from_env(env, "chat_agent").delivery_retention_days

    assert Settings().delivery_retention_days == 30.0 and days("") == 30.0
    assert pruner(sqlite_sessions, FINISHED, days("0")) is None
    seven = pruner(sqlite_sessions, FINISHED, days("7"))
    assert seven is not None and seven.retention == 7 * DAY


def test_the_chat_workers_relay_prunes_finished_deliveries_too(harness: Harness) -> None:
    relay = outbox_relay(harness.deps, harness.broker)
    assert {p.aged.name: p.retention for p in relay.pruners} == {
        "chat_agent.outbox": 7 * DAY,
        "chat_agent.processed_events": 14 * DAY,
        "chat_agent.deliveries": 30 * DAY,
    }
