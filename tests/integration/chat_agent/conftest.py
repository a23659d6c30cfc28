"""chat_agent over the real services: Kafka, PostgreSQL and Redis, LINE played by a recorder.

One worker (real understanding model, real consumer loops, relay and delivery loop) runs
per module under consumer groups of its own that start at the end of each topic, so
history left by earlier runs and other test suites is never replayed into it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from services.chat_agent.app import create_app
from services.chat_agent.bootstrap import bootstrap
from services.chat_agent.delivery.loop import RetryPolicy
from services.chat_agent.worker import CONSUMED, PRODUCED
from services.chat_agent.worker import run as run_worker
from shared.bus import broker_from_settings
from shared.config import Settings
from shared.events import TOPIC_OF_TYPE, Envelope, encode, make_event
from tenin.line_recorder import LineRecorder
from tests.support.kafka_tools import TopicTail, start_groups_at_end
from tests.support.line_payloads import signed_webhook
from tests.support.waiting import wait_for

CHANNEL_SECRET = "it-channel-secret-" + uuid.uuid4().hex[:8]
ACCESS_TOKEN = "it-access-token"


@dataclass
class ChatStack:
    settings: Settings
    client: Any
    line: LineRecorder
    tails: dict[str, TopicTail]

    def post(self, events: list[dict[str, Any]]) -> Any:
        body, headers = signed_webhook(CHANNEL_SECRET, events)
        return self.client.post("/webhooks/line", data=body, headers=headers)

    def publish(self, event_type: str, payload: dict[str, Any], key: str) -> Envelope:
        envelope = make_event(event_type, payload, key=key, producer="test")
        producer = broker_from_settings(self.settings).producer()
        try:
            producer.send(TOPIC_OF_TYPE[event_type], key, encode(envelope))
            producer.flush(timeout=10)
        finally:
            producer.close()
        return envelope

    def events(self, event_type: str, key: str, *, timeout: float = 45) -> list[Envelope]:
        tail = self.tails[TOPIC_OF_TYPE[event_type]]
        return wait_for(
            lambda: tail.matching(lambda e: e.type == event_type and e.key == key),
            timeout=timeout,
            what=f"{event_type} for {key}",
        )


@pytest.fixture(scope="module")
def line() -> Iterator[LineRecorder]:
    with LineRecorder(token=ACCESS_TOKEN) as recorder:
        yield recorder


@pytest.fixture(scope="module")
def chat_settings(real_settings: Settings, line: LineRecorder) -> Settings:
    return replace(
        real_settings,
        service="chat_agent",
        line_channel_secret=CHANNEL_SECRET,
        line_channel_access_token=ACCESS_TOKEN,
        messaging_api_base=line.base_url,
        public_base_url="http://tenin.test",
    )


@pytest.fixture(scope="module")
def stack(chat_settings: Settings, line: LineRecorder) -> Iterator[ChatStack]:
    servers = chat_settings.kafka_bootstrap_servers
    assert servers
    broker_from_settings(chat_settings).ensure_topics([*CONSUMED, *PRODUCED])
    prefix = f"chat_agent-it-{uuid.uuid4().hex[:8]}"
    start_groups_at_end(
        servers,
        [f"{prefix}.{name}" for name in ("inbound", "offers", "coupons", "campaigns")],
        list(CONSUMED),
    )
    tails = {
        t: TopicTail(servers, t) for t in ("customer.events", "offer.requests", "coupon.events")
    }
    stop = threading.Event()
    exit_code: list[int] = []
    thread = threading.Thread(
        target=lambda: exit_code.append(
            run_worker(
                chat_settings,
                stop,
                group_prefix=prefix,
                delivery_policy=RetryPolicy(base_backoff_s=0.2, max_backoff_s=2.0),
            )
        ),
        daemon=True,
    )
    thread.start()
    deps = bootstrap(chat_settings)
    app = create_app(chat_settings, deps=deps)
    yield ChatStack(chat_settings, app.test_client(), line, tails)
    stop.set()
    thread.join(timeout=60)
    deps.publisher.close()
    for tail in tails.values():
        tail.close()
    assert exit_code == [0], "the worker stopped cleanly"


def texts(delivered: list[Any]) -> list[str]:
    return [t for d in delivered for t in d.texts()]


def dumps(envelope: Envelope) -> str:
    return json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False)
