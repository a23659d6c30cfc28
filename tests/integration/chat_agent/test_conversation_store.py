"""One contract for both conversation stores: real Redis and the in-memory twin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from services.chat_agent.conversation.state import (
    InMemoryConversationStore,
    RedisConversationStore,
)
from shared.redis_client import make_redis


@pytest.fixture(params=["redis", "memory"])
def store_and_closed(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[RedisConversationStore | InMemoryConversationStore, list[int]]]:
    closed: list[int] = []
    if request.param == "memory":
        yield InMemoryConversationStore(idle_timeout_s=60, on_session_closed=closed.append), closed
        return
    url = request.getfixturevalue("real_services")["REDIS_URL"]
    namespace = f"ca-test-{uuid.uuid4().hex[:8]}:"  # its own open-sessions index
    yield (
        RedisConversationStore(
            make_redis(url), idle_timeout_s=60, on_session_closed=closed.append, namespace=namespace
        ),
        closed,
    )


def test_a_session_accumulates_turns_until_it_idles(store_and_closed) -> None:  # type: ignore[no-untyped-def]
    store, closed = store_and_closed
    cid = "c_" + uuid.uuid4().hex[:20]
    now = 1_000_000.0
    for i, intent in enumerate(["greeting", "wants_deals", "thanks"]):
        state = store.current(cid, now + i)
        state.record(intent, 0.5, "ja", now + i)
        store.save(cid, state)
    state = store.current(cid, now + 10)
    assert state.turns == 3 and state.intents == ["greeting", "wants_deals", "thanks"]
    assert 0 < state.sentiment <= 0.5 and state.language == "ja"
    fresh = store.current(cid, now + 100)  # after the idle timeout: a new session
    assert fresh.turns == 0 and fresh.language == "ja"
    assert closed == [3]
    store.save(cid, fresh)
    assert store.sweep(now + 1000) == 1  # closed, but an empty session reports nothing
    assert closed == [3]


def test_the_sweeper_closes_each_session_once(store_and_closed) -> None:  # type: ignore[no-untyped-def]
    store, closed = store_and_closed
    cids = ["c_" + uuid.uuid4().hex[:20] for _ in range(3)]
    now = 2_000_000.0
    for n, cid in enumerate(cids, start=1):
        state = store.current(cid, now)
        for _ in range(n):
            state.record("small_talk", 0.0, "en", now)
        store.save(cid, state)
    assert store.current(cids[0], now + 30).turns == 1, "not idle yet"
    store.sweep(now + 61)
    store.sweep(now + 62)
    assert sorted(closed) == [1, 2, 3]


def test_redis_holds_no_message_text(real_services: dict[str, str]) -> None:
    client = make_redis(real_services["REDIS_URL"])
    namespace = f"ca-test-{uuid.uuid4().hex[:8]}:"
    store = RedisConversationStore(client, namespace=namespace)
    cid = "c_" + uuid.uuid4().hex[:20]
    state = store.current(cid, 1.0)
    state.record("complaint", -0.7, "en", 1.0)
    store.save(cid, state)
    stored = client.hgetall(f"{namespace}conv:{cid}")
    assert set(stored) == {
        "session_id",
        "started_at",
        "last_seen",
        "turns",
        "intents",
        "sentiment",
        "language",
        "awaiting",
        "greeted",
    }
    assert client.ttl(f"{namespace}conv:{cid}") > 0


def test_redis_down_degrades_to_a_fresh_session() -> None:
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2, retry=None
    )
    store = RedisConversationStore(dead)
    state = store.current("c_x", 5.0)
    assert state.turns == 0
    store.save("c_x", state)  # logged, not raised: the clerk still answers
    assert store.sweep(10.0) == 0
