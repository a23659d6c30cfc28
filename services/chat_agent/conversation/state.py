"""Conversation state per customer, in Redis with a TTL: intents and sentiment, never texts.

A session is a run of turns with less than `idle_timeout_s` between them. When a session
ends (the next message comes after the gap, or the sweeper finds it idle) its turn count
is observed as conversation-turns per session (CPS, XiaoIce's headline metric). Ending a
session is claimed with ZREM on the index of open sessions, so exactly one process
observes it, however many workers run.

Redis is soft state here: when it is down the clerk still answers, as a new session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

import redis
import structlog
from redis.typing import EncodableT, FieldT

from services.chat_agent.persona import tone_for
from shared.ids import random_uuid

log = structlog.get_logger(__name__)

# Keys: "<namespace>conv:<customer_id>" (a hash) and "<namespace>conv-sessions" (open
# sessions by last activity); the namespace is "ca:" (docs/architecture.md § Parts).
PREFIX = "ca:conv:"
RECENT_INTENTS = 8
# How much of the previous mood carries into the next message (exponential smoothing).
SENTIMENT_MEMORY = 0.4


@dataclass
class ConversationState:
    """What the clerk remembers of the current session."""

    session_id: str = field(default_factory=lambda: random_uuid().hex[:16])
    started_at: float = 0.0
    last_seen: float = 0.0
    turns: int = 0
    intents: list[str] = field(default_factory=list)
    sentiment: float = 0.0
    language: str | None = None
    awaiting: str | None = None
    greeted: bool = False

    def record(
        self, intent: str, sentiment: float | None, language: str | None, now: float
    ) -> None:
        """Count one turn: remember its intent, fold in its sentiment."""
        self.turns += 1
        self.intents = (self.intents + [intent])[-RECENT_INTENTS:]
        if sentiment is not None:
            self.sentiment = round(
                SENTIMENT_MEMORY * self.sentiment + (1 - SENTIMENT_MEMORY) * sentiment, 4
            )
        if language:
            self.language = language
        self.last_seen = now

    def to_redis(self) -> dict[str, str]:
        return {
            "session_id": self.session_id,
            "started_at": repr(self.started_at),
            "last_seen": repr(self.last_seen),
            "turns": str(self.turns),
            "intents": json.dumps(self.intents),
            "sentiment": repr(self.sentiment),
            "language": self.language or "",
            "awaiting": self.awaiting or "",
            "greeted": "1" if self.greeted else "0",
        }

    @classmethod
    def from_redis(cls, raw: Mapping[str, Any]) -> ConversationState:
        return cls(
            session_id=raw.get("session_id") or random_uuid().hex[:16],
            started_at=float(raw.get("started_at") or 0),
            last_seen=float(raw.get("last_seen") or 0),
            turns=int(raw.get("turns") or 0),
            intents=list(json.loads(raw.get("intents") or "[]")),
            sentiment=float(raw.get("sentiment") or 0),
            language=raw.get("language") or None,
            awaiting=raw.get("awaiting") or None,
            greeted=raw.get("greeted") == "1",
        )


SessionClosed = Callable[[int], None]


class ConversationStore(Protocol):
    """Where conversation state lives: Redis, or the in-process twin."""

    def current(self, customer_id: str, now: float) -> ConversationState: ...

    def save(self, customer_id: str, state: ConversationState) -> None: ...

    def forget(self, customer_id: str) -> None: ...

    def sweep(self, now: float, limit: int = 500) -> int: ...


def tone_of(conversations: ConversationStore, customer_id: str, now: datetime) -> str:
    """The tone for a message the clerk sends unprompted (the mood of the last session)."""
    return tone_for(conversations.current(customer_id, now.timestamp()).sentiment)


def _resume(
    raw: Mapping[str, Any] | None, now: float, idle_timeout_s: float, close: Callable[[int], object]
) -> ConversationState:
    """The session stored in `raw` if it is still open, else a fresh one.

    An idle session is closed first (`close` gets its turn count); the fresh one keeps
    its language.
    """
    if not raw:
        return ConversationState(started_at=now, last_seen=now)
    state = ConversationState.from_redis(raw)
    if now - state.last_seen < idle_timeout_s:
        return state
    close(state.turns)
    return ConversationState(started_at=now, last_seen=now, language=state.language)


class RedisConversationStore:
    """Conversation state in Redis: a hash per customer and a sorted set of open sessions."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        idle_timeout_s: float = 1800.0,
        on_session_closed: SessionClosed | None = None,
        namespace: str = "ca:",
    ) -> None:
        self._redis = client
        self._prefix = f"{namespace}conv:"
        self._sessions = f"{namespace}conv-sessions"
        self.idle_timeout_s = idle_timeout_s
        # Kept a while past the idle timeout so the sweeper can still read the turn count.
        self._ttl_s = int(idle_timeout_s * 2) + 60
        self._on_closed = on_session_closed or (lambda turns: None)

    def current(self, customer_id: str, now: float) -> ConversationState:
        """The open session, or a fresh one (closing an idle one first)."""
        try:
            # redis-py types its sync and async answers as one union: this client is sync.
            raw = cast(dict[str, str], self._redis.hgetall(self._prefix + customer_id))
        except redis.RedisError as exc:
            log.warning("conversation_state_unavailable", error=str(exc)[:200])
            return ConversationState(started_at=now, last_seen=now)
        return _resume(raw, now, self.idle_timeout_s, lambda turns: self._close(customer_id, turns))

    def save(self, customer_id: str, state: ConversationState) -> None:
        """Store the session (TTL refreshed) and mark it open."""
        key = self._prefix + customer_id
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(key)
            # Built item by item: redis-py's key type is wider than str, and dicts are invariant.
            fields: dict[FieldT, EncodableT] = {k: v for k, v in state.to_redis().items()}
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl_s)
            pipe.zadd(self._sessions, {customer_id: state.last_seen})
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("conversation_state_not_saved", error=str(exc)[:200])

    def forget(self, customer_id: str) -> None:
        """End the session now (the customer unfollowed)."""
        try:
            turns = int(self._redis.hget(self._prefix + customer_id, "turns") or 0)
            self._close(customer_id, turns)
            self._redis.delete(self._prefix + customer_id)
        except redis.RedisError as exc:
            log.warning("conversation_state_not_deleted", error=str(exc)[:200])

    def sweep(self, now: float, limit: int = 500) -> int:
        """Close sessions idle for longer than the timeout; returns how many were closed."""
        try:
            idle = cast(
                list[str],
                self._redis.zrangebyscore(
                    self._sessions, "-inf", now - self.idle_timeout_s, start=0, num=limit
                ),
            )
        except redis.RedisError as exc:
            log.warning("conversation_sweep_failed", error=str(exc)[:200])
            return 0
        closed = 0
        for customer_id in idle:
            try:
                turns = int(self._redis.hget(self._prefix + customer_id, "turns") or 0)
            except redis.RedisError:
                continue
            closed += self._close(customer_id, turns)
        return closed

    def _close(self, customer_id: str, turns: int) -> int:
        try:
            claimed = self._redis.zrem(self._sessions, customer_id)
        except redis.RedisError as exc:
            log.warning("conversation_close_failed", error=str(exc)[:200])
            return 0
        if claimed and turns > 0:
            self._on_closed(turns)
        return int(bool(claimed))


class InMemoryConversationStore:
    """The same behaviour in a dict, for unit tests and tools without Redis."""

    def __init__(
        self, *, idle_timeout_s: float = 1800.0, on_session_closed: SessionClosed | None = None
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._states: dict[str, dict[str, str]] = {}
        self._open: dict[str, float] = {}
        self._on_closed = on_session_closed or (lambda turns: None)

    def current(self, customer_id: str, now: float) -> ConversationState:
        return _resume(
            self._states.get(customer_id),
            now,
            self.idle_timeout_s,
            lambda turns: self._close(customer_id, turns),
        )

    def save(self, customer_id: str, state: ConversationState) -> None:
        self._states[customer_id] = state.to_redis()
        self._open[customer_id] = state.last_seen

    def forget(self, customer_id: str) -> None:
        raw = self._states.pop(customer_id, {})
        self._close(customer_id, int(raw.get("turns") or 0))

    def sweep(self, now: float, limit: int = 500) -> int:
        idle = [c for c, seen in self._open.items() if seen <= now - self.idle_timeout_s][:limit]
        return sum(self._close(c, int(self._states.get(c, {}).get("turns") or 0)) for c in idle)

    def _close(self, customer_id: str, turns: int) -> int:
        if self._open.pop(customer_id, None) is None:
            return 0
        if turns > 0:
            self._on_closed(turns)
        return 1
