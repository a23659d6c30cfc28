"""A chat_agent harness with fakes only: in-memory broker, SQLite, in-memory conversations.

Tests drive it edge to edge: signed LINE payloads into the webhook, the worker's real
consumer loops and handlers pump the bus, and the outbox and `deliveries` are read back.
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.chat_agent.app import create_app
from services.chat_agent.bootstrap import Dependencies, bootstrap
from services.chat_agent.conversation.state import InMemoryConversationStore
from services.chat_agent.delivery.loop import DeliveryLoop, RetryPolicy
from services.chat_agent.line.client import LineClient
from services.chat_agent.line.events import customer_id_for
from services.chat_agent.models import Delivery, Outbox
from services.chat_agent.persona import Persona
from services.chat_agent.understanding import Interpretation
from services.chat_agent.worker import consumer_loops
from shared.bus import InMemoryBroker
from shared.config import Settings
from shared.events import Envelope, decode
from shared.outbox_relay import OutboxRelay
from tenin.line_recorder import LineRecorder
from tests.support.line_payloads import signed_webhook

SECRET = "unit-channel-secret"
MEMBER_SITE = "https://members.example/line-link"


class FakeUnderstanding:
    """Keyword rules standing in for the embedding model (unit tests only)."""

    RULES = (
        (r"stop|配信停止", "opt_out"),
        (r"start|配信再開", "opt_in"),
        (r"coupon|deal|クーポン", "wants_deals"),
        (r"hello|こんにちは|hi\b", "greeting"),
        (r"link|会員", "link_membership"),
        (r"thank|ありがと", "thanks"),
        (r"onigiri|おにぎり", "product_question"),
        (r"terrible|最悪", "complaint"),
        (r"help|ヘルプ", "help"),
    )

    def __init__(self) -> None:
        self.calls = 0

    def understand(self, text: str, language_hint: str | None = None) -> Interpretation:
        self.calls += 1
        lowered = text.lower()
        member = re.search(r"m\d{4,12}", lowered)
        language = "ja" if any(ord(ch) > 0x3000 for ch in text) else "en"
        sentiment = -0.8 if "terrible" in lowered or "最悪" in text else 0.2
        category = "onigiri" if "onigiri" in lowered or "おにぎり" in text else None
        if member:
            return Interpretation(
                "link_membership", 1.0, 0.0, language, None, member.group(0).upper(), "rule"
            )
        for pattern, intent in self.RULES:
            if re.search(pattern, lowered):
                return Interpretation(intent, 1.0, sentiment, language, category, None, "rule")
        return Interpretation("small_talk", 0.5, sentiment, language, None, None, "embedding")


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Harness:
    settings: Settings
    broker: InMemoryBroker
    deps: Dependencies
    client: Any
    clock: Clock
    closed_sessions: list[int]
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.loops = consumer_loops(self.deps, self.broker)
        self.relay = OutboxRelay(self.deps.sessions, Outbox, self.broker.producer())

    def post(self, events: list[dict[str, Any]]) -> Any:
        body, headers = signed_webhook(SECRET, events)
        return self.client.post("/webhooks/line", data=body, headers=headers)

    def pump(self) -> None:
        """Run every consumer and the relay until the bus is quiet."""
        for _ in range(20):
            moved = self.relay.relay_once()
            for loop in self.loops.values():
                moved += loop.run_once(self.stop, timeout_ms=0)
            if not moved:
                return
        raise AssertionError("the bus did not settle")

    def send(self, events: list[dict[str, Any]]) -> None:
        assert self.post(events).status_code == 200
        self.pump()

    def publish(self, envelope: Envelope) -> None:
        from shared.events import TOPIC_OF_TYPE, encode

        self.broker.append(TOPIC_OF_TYPE[envelope.type], envelope.key, encode(envelope), ())
        self.pump()

    def events(self, event_type: str, key: str | None = None) -> list[Envelope]:
        from shared.events import TOPIC_OF_TYPE

        out = [decode(m.value) for m in self.broker.messages(TOPIC_OF_TYPE[event_type])]
        return [e for e in out if e.type == event_type and (key is None or e.key == key)]

    def texts(self, customer_id: str) -> list[str]:
        """Every text message queued for the customer, in order."""
        return [
            m["text"]
            for d in self.deliveries(customer_id)
            for m in d.messages
            if m["type"] == "text"
        ]

    def deliveries(self, customer_id: str) -> list[Delivery]:
        with self.deps.sessions() as session:
            return list(
                session.execute(
                    select(Delivery)
                    .where(Delivery.customer_id == customer_id)
                    .order_by(Delivery.created_at)
                ).scalars()
            )

    def delivery_loop(
        self, line: LineRecorder, *, options: dict[str, Any] | None = None, **policy: Any
    ) -> DeliveryLoop:
        """A loop on the recording server; `options` are DeliveryLoop's (wake, handoff…)."""
        return DeliveryLoop(
            self.deps.sessions,
            LineClient(line.base_url, "test-token", timeout_s=5),
            policy=RetryPolicy(**{"base_backoff_s": 0.0, **policy}),
            clock=self.clock,
            **(options or {}),
        )


def customer_of(user: str) -> str:
    return customer_id_for(UNIT_SETTINGS_SECRET, user)


UNIT_SETTINGS_SECRET = "unit-secret-key-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def persona() -> Persona:
    return Persona.load()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database (one file per schema), copied for each test."""
    from tests.support.databases import migrate

    folder = tmp_path_factory.mktemp("chat-template")
    migrate(f"sqlite:///{folder / 'tenin.db'}")
    return folder


@pytest.fixture
def sqlite_db(migrated_template: Path, tmp_path: Path) -> str:
    """A fresh migrated database per test: campaigns and customers never leak between tests."""
    for source in migrated_template.glob("*.db"):
        shutil.copy(source, tmp_path / source.name)
    return f"sqlite:///{tmp_path / 'tenin.db'}"


@pytest.fixture
def harness(
    sqlite_db: str, persona: Persona, tmp_path: Path, line: LineRecorder
) -> Iterator[Harness]:
    sqlite_url = sqlite_db
    settings = Settings(
        service="chat_agent",
        database_url=sqlite_url,
        line_channel_secret=SECRET,
        line_channel_access_token="test-token",
        messaging_api_base=line.base_url,
        member_link_url=MEMBER_SITE,
        secret_key=UNIT_SETTINGS_SECRET,
        public_base_url="https://tenin.example",
        data_dir=tmp_path,
    )
    broker = InMemoryBroker()
    clock = Clock()
    closed: list[int] = []
    deps = bootstrap(
        settings,
        broker=broker,
        conversations=InMemoryConversationStore(on_session_closed=closed.append),
        understanding=FakeUnderstanding(),
        persona=persona,
        clock=clock,
    )
    app = create_app(settings, deps=deps)
    yield Harness(settings, broker, deps, app.test_client(), clock, closed)


@pytest.fixture
def line() -> Iterator[LineRecorder]:
    with LineRecorder(token="test-token") as recorder:
        yield recorder
