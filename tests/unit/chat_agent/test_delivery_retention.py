"""chat_agent's finished deliveries (sent, failed, cancelled) older than
TENIN_DELIVERY_RETENTION_DAYS are deleted with their `drop_pushes` rows, pending and held
ones never (shared/retention.py, delivery/queue.FINISHED); offer requests older than
TENIN_OFFER_REQUEST_RETENTION_DAYS go too (offers/asking.ASKED), on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.chat_agent.delivery.queue import FINISHED
from services.chat_agent.models import OfferRequest
from services.chat_agent.offers.asking import ASKED
from services.chat_agent.worker import outbox_relay
from shared.config import Settings
from shared.retention import Pruner, pruner
from tests.support.delivery_rows import kept_deliveries, kept_drop_pushes, write_deliveries
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
        drop_ids=["d-sent", "d-failed", "d-cancelled", "d-pending", "d-held", "d-recent"],
    )
    finished = Pruner(sqlite_sessions, FINISHED, 30 * DAY, clock=lambda: NOW, batch_size=2)
    assert [finished.prune_batch() for _ in range(3)] == [2, 1, 0], "oldest first, in batches"
    assert kept_deliveries(sqlite_sessions, customer) == [
        ("held", old - 4 * DAY),
        ("pending", old - 3 * DAY),
        ("sent", recent),
    ]
    # Each delivery's drop push went with it, and only those.
    assert kept_drop_pushes(sqlite_sessions, customer) == ["d-held", "d-pending", "d-recent"]


def test_a_delivery_that_is_no_drops_push_goes_alone(sqlite_sessions: Sessions) -> None:
    """A reply or a thank-you has no `drop_pushes` row: pruning it deletes nothing else,
    not even another customer's push of the same drop."""
    customer, other = (f"c_{uuid.uuid4().hex[:12]}" for _ in range(2))
    write_deliveries(sqlite_sessions, customer, [("sent", NOW - 40 * DAY)])
    write_deliveries(sqlite_sessions, other, [("sent", NOW - DAY)], drop_ids=["d-1"])
    finished = Pruner(sqlite_sessions, FINISHED, 30 * DAY, clock=lambda: NOW)
    assert finished.prune_batch() == 1
    assert kept_deliveries(sqlite_sessions, customer) == []
    assert kept_drop_pushes(sqlite_sessions, other) == ["d-1"]


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
        "chat_agent.processed_events": 15 * DAY,
        "chat_agent.deliveries": 30 * DAY,
        "chat_agent.offer_requests": 100 * DAY,
    }


def test_offer_requests_go_after_their_window_whatever_their_status(
    sqlite_sessions: Sessions,
) -> None:
    """A request is read for seconds once decided, and by the thank-you for its coupon
    until the coupon can no longer be redeemed (90 days of validity at most, and a till's
    72 hours of lateness): the 100-day window outlasts both."""
    customer = f"c_{uuid.uuid4().hex[:12]}"
    ages = {"decided": 101, "pending": 120, "expired": 150, "recent": 99}
    rows = [
        {
            "request_id": f"{customer}-{name}",
            "customer_id": customer,
            "trigger": "deals",
            "language": "ja",
            "status": "pending" if name == "pending" else "decided",
            "coupon_code": None,
            "created_at": NOW - days * DAY,
        }
        for name, days in ages.items()
    ]
    with sqlite_sessions() as session, session.begin():
        session.execute(insert(OfferRequest), rows)
    asked = Pruner(sqlite_sessions, ASKED, 100 * DAY, clock=lambda: NOW, batch_size=2)
    assert [asked.prune_batch() for _ in range(2)] == [2, 1], "oldest first, in batches"
    with sqlite_sessions() as session:
        kept = session.scalars(
            select(OfferRequest.request_id).where(OfferRequest.customer_id == customer)
        )
        assert list(kept) == [f"{customer}-recent"]


def test_the_offer_request_window_comes_from_settings(tmp_path: Path) -> None:
    def days(value: str) -> float | None:
        env = {"TENIN_OFFER_REQUEST_RETENTION_DAYS": value, "TENIN_DATA_DIR": str(tmp_path)}
        return Settings.from_env(env, "chat_agent").offer_request_retention_days

    assert days("") == 100.0 and days("120") == 120.0 and days("0") is None
