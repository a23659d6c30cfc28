"""Wiring: real adapters from settings, or the ones a test hands in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import redis

from services.chat_agent import metrics
from services.chat_agent.chat import Chat, ConversationStore, Understands
from services.chat_agent.conversation import InMemoryConversationStore, RedisConversationStore
from services.chat_agent.line_client import LineClient
from services.chat_agent.persona import Persona
from services.chat_agent.webhook import WebhookPublisher
from shared.bus import Broker, KafkaBroker, broker_from_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.http import ReadinessCheck
from shared.readiness import readiness_checks
from shared.redis_client import make_redis

# The webhook must answer LINE within 2 s: a producer must not block longer than that
# waiting for broker metadata (kafka-python's default is 60 s).
WEBHOOK_MAX_BLOCK_MS = 1500


@dataclass
class Web:
    """What the HTTP app needs."""

    settings: Settings
    publisher: WebhookPublisher
    readiness: dict[str, ReadinessCheck]


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


def web(
    settings: Settings, *, broker: Broker | None = None, redis_client: redis.Redis | None = None
) -> Web:
    """The webhook publisher and readiness checks; nothing connects until first use."""
    client = redis_client
    if client is None and settings.redis_url:
        client = make_redis(settings.redis_url)
    engine = make_engine(settings.effective_database_url, pool_size=2)
    holder: dict[str, Broker] = {}

    def the_broker() -> Broker:
        if "broker" not in holder:
            holder["broker"] = broker or webhook_broker(settings)
        return holder["broker"]

    publisher = WebhookPublisher(lambda: the_broker().producer(), settings.secret_key, client)
    readiness = readiness_checks(database=engine, redis_client=client, broker=the_broker)
    return Web(settings=settings, publisher=publisher, readiness=readiness)


def conversation_store(settings: Settings, client: redis.Redis | None) -> ConversationStore:
    """Redis when configured; otherwise the in-process twin (state lost on restart)."""
    observe = metrics.TURNS_PER_SESSION.observe
    if client is None and settings.redis_url:
        client = make_redis(settings.redis_url)
    if client is None:
        return InMemoryConversationStore(on_session_closed=observe)
    return RedisConversationStore(client, on_session_closed=observe)


def chat(
    settings: Settings,
    *,
    redis_client: redis.Redis | None = None,
    understanding: Understands | None = None,
    persona: Persona | None = None,
    kick: Callable[[], None] | None = None,
) -> Chat:
    """The handlers' dependencies: database, conversation store, understanding, persona."""
    if understanding is None:
        from services.chat_agent.understanding import Understanding

        understanding = Understanding.load()
    engine = make_engine(settings.effective_database_url)
    built = Chat(
        settings=settings,
        sessions=make_session_factory(engine),
        conversations=conversation_store(settings, redis_client),
        understanding=understanding,
        persona=persona or Persona.load(),
    )
    if kick is not None:
        built.kick = kick
    return built


def line_client(settings: Settings) -> LineClient:
    """The LINE Messaging API client for MESSAGING_API_BASE."""
    return LineClient(settings.messaging_api_base, settings.line_channel_access_token)
