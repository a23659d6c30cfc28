"""Wiring: chat_agent's one dependency object, from settings or from what a test hands in.

Both the HTTP app and the worker are built on `bootstrap(...)`. Nothing connects here:
the engine, the Redis client and the brokers connect on first use, and what only the
worker needs (the understanding model with its sentence encoder, the persona pack)
loads on first use, so the app never pays for it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.conversation.inbound import Understands
from services.chat_agent.conversation.state import (
    ConversationStore,
    InMemoryConversationStore,
    RedisConversationStore,
)
from services.chat_agent.conversation.turn import Pacing
from services.chat_agent.delivery.handoff import Handoff
from services.chat_agent.line.client import LineClient
from services.chat_agent.line.webhook import WebhookPublisher
from services.chat_agent.linking.tokens import LinkTokens
from services.chat_agent.persona import Persona
from shared.bus import Broker, KafkaBroker, broker_from_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory, utcnow
from shared.http import ReadinessCheck
from shared.ratelimit import Limits, RateLimiter, rate_limiter
from shared.readiness import readiness_checks
from shared.redis_client import make_redis
from shared.table_stats import GrowthAnalyzer

SERVICE = "chat_agent"
# The webhook must answer LINE within 2 s: a producer must not block longer than that
# waiting for broker metadata (kafka-python's default is 60 s).
WEBHOOK_MAX_BLOCK_MS = 1500
# Database connections: the worker's threads write; the app only checks /readyz.
WORKER_POOL_SIZE = 5
WEB_POOL_SIZE = 2
# What a drop's pushes grow from empty (shared/table_stats.py).
DROP_GROWN_TABLES = ("chat_agent.deliveries", "chat_agent.drop_pushes")

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built on first use, once, however many threads ask for it."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._built: list[T] = []  # empty until built
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if not self._built:
                self._built.append(self._build())
            return self._built[0]


@dataclass
class Dependencies:
    """What chat_agent's app and worker work with; build it with `bootstrap`.

    The `Lazy` members build on first call: `understanding()` loads the sentence
    encoder (5-8 s) and `persona()` reads the persona pack, which only the worker needs;
    `broker()` is the worker's broker (consumers, relay, dead letters), `webhook_broker()`
    the app's, whose producer gives up within LINE's deadline.
    """

    settings: Settings
    engine: Engine
    sessions: Callable[[], Session]
    redis: redis.Redis | None
    conversations: ConversationStore
    publisher: WebhookPublisher
    understanding: Lazy[Understands]
    persona: Lazy[Persona]
    broker: Lazy[Broker]
    webhook_broker: Lazy[Broker]
    limiter: RateLimiter
    limits: Limits
    links: LinkTokens
    clock: Callable[[], datetime] = utcnow
    pacing: Pacing = Pacing()
    # Set by handlers that queued a message; the delivery loop waits on it.
    deliveries_due: threading.Event = field(default_factory=threading.Event)
    # Claims handed by handlers straight to this process's delivery loop (delivery/handoff.py).
    handoff: Handoff = field(default_factory=Handoff)
    # What a drop's pushes grow from empty, analyzed as they do (shared/table_stats.py).
    drop_tables_grown: GrowthAnalyzer = field(init=False)

    def __post_init__(self) -> None:
        self.drop_tables_grown = GrowthAnalyzer(self.sessions, DROP_GROWN_TABLES)

    @property
    def readiness(self) -> dict[str, ReadinessCheck]:
        """/readyz: the database, Kafka, and Redis when it is configured."""
        return readiness_checks(
            database=self.engine, redis_client=self.redis, broker=self.webhook_broker
        )

    def kick(self) -> None:
        """Wake the delivery loop: a handler just committed a delivery."""
        self.deliveries_due.set()

    def line_client(self) -> LineClient:
        """A LINE Messaging API client for MESSAGING_API_BASE (one per delivery loop)."""
        return LineClient(self.settings.messaging_api_base, self.settings.line_channel_access_token)


def bootstrap(
    settings: Settings | None = None,
    *,
    broker: Broker | None = None,
    redis_client: redis.Redis | None = None,
    conversations: ConversationStore | None = None,
    understanding: Understands | None = None,
    persona: Persona | None = None,
    clock: Callable[[], datetime] = utcnow,
    pacing: Pacing | None = None,
    pool_size: int = WORKER_POOL_SIZE,
    limits: Limits | None = None,
) -> Dependencies:
    """The real adapters from `settings`, except those a test hands in; nothing connects."""
    settings = settings or Settings.from_env(service=SERVICE)
    client = redis_client
    if client is None and settings.redis_url:
        client = make_redis(settings.redis_url)
    engine = make_engine(settings.effective_database_url, pool_size=pool_size)
    to_webhook = Lazy(_given_or(broker, functools.partial(webhook_broker, settings)))
    namespace = settings.topic_namespace
    limiter = (
        rate_limiter(settings.redis_url, namespace)
        if redis_client is None
        else RateLimiter(redis_client, namespace)
    )
    limits = limits or Limits.from_env()
    platform = Lazy(
        lambda: LineClient(settings.messaging_api_base, settings.line_channel_access_token)
    )
    return Dependencies(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=client,
        conversations=conversation_store(client) if conversations is None else conversations,
        publisher=WebhookPublisher(lambda: to_webhook().producer(), settings.pseudonym_key, client),
        understanding=Lazy(_given_or(understanding, _load_understanding)),
        persona=Lazy(_given_or(persona, Persona.load)),
        broker=Lazy(_given_or(broker, functools.partial(broker_from_settings, settings))),
        webhook_broker=to_webhook,
        limiter=limiter,
        limits=limits,
        links=LinkTokens(platform, limiter, limits["link"], settings.member_link_url),
        clock=clock,
        pacing=pacing or Pacing(refollow_offer_s=settings.refollow_offer_days * 86400),
    )


def conversation_store(client: redis.Redis | None) -> ConversationStore:
    """Redis when configured; otherwise the in-process twin (state lost on restart)."""
    observe = metrics.TURNS_PER_SESSION.observe
    if client is None:
        return InMemoryConversationStore(on_session_closed=observe)
    return RedisConversationStore(client, on_session_closed=observe)


def webhook_broker(settings: Settings) -> Broker:
    """The broker from settings, with a producer that gives up within the LINE deadline."""
    broker = broker_from_settings(settings)
    if isinstance(broker, KafkaBroker):
        producer = {**broker.profile.producer, "max_block_ms": WEBHOOK_MAX_BLOCK_MS}
        profile = replace(broker.profile, producer=producer)
        return KafkaBroker(
            broker.bootstrap,
            profile,
            client_id=f"{settings.service}-webhook",
            namespace=broker.namespace,
        )
    return broker


def _given_or(value: T | None, build: Callable[[], T]) -> Callable[[], T]:
    """What a test handed in, or how to build the real one."""
    if value is None:
        return build
    given = value
    return lambda: given


def _load_understanding() -> Understands:
    # Imported here: the HTTP app never loads numpy or the encoder.
    from services.chat_agent.understanding import Understanding

    return Understanding.load()
