"""The webhook endpoint: signature, validation, publishing to chat.inbound."""

from __future__ import annotations

import json
from typing import Any

from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from services.chat_agent import metrics
from services.chat_agent.line.events import LineEvent
from services.chat_agent.line.signature import sign, verify
from shared.events import CHAT_INBOUND, decode
from tests.support.line_payloads import (
    follow_event,
    group_text_event,
    join_event,
    redelivered,
    signed_webhook,
    text_event,
    user_id,
)
from tests.unit.chat_agent.conftest import SECRET, Harness, customer_of


def _inbound(harness: Harness) -> list:
    return [decode(m.value) for m in harness.broker.messages(CHAT_INBOUND)]


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"destination":"U1","events":[]}'
    # Known answer from `openssl dgst -sha256 -hmac secret -binary | base64`.
    assert sign("secret", body) == "9a6kxZ9i5nWMf5b8hc6KEcGGkvVpRrwtLnjZ/UIHOrM="
    assert verify("secret", body, sign("secret", body))
    assert not verify("secret", body + b" ", sign("secret", body))
    assert not verify("other", body, sign("secret", body))
    assert not verify("secret", body, None)
    assert not verify("secret", body, "")
    assert not verify("secret", body, "ｓｉｇ")  # non-ASCII header value


def test_a_signed_event_is_published_keyed_by_the_sender_pseudonym(harness: Harness) -> None:
    user = user_id()
    event = text_event(user, "hello")
    response = harness.post([event])
    assert response.status_code == 200
    [envelope] = _inbound(harness)
    assert envelope.type == "line.webhook_event"
    assert envelope.key == customer_of(user)
    assert user not in envelope.key
    assert envelope.payload["event"] == event, "the raw LINE event travels unchanged"
    assert envelope.event_id == LineEvent.model_validate(event).envelope_id


def test_missing_or_wrong_signature_gets_401_and_publishes_nothing(harness: Harness) -> None:
    body, headers = signed_webhook(SECRET, [text_event(user_id(), "hello")])
    del headers["X-Line-Signature"]
    assert harness.client.post("/webhooks/line", data=body, headers=headers).status_code == 401
    headers["X-Line-Signature"] = sign("not-the-secret", body)
    response = harness.client.post("/webhooks/line", data=body, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    _, good = signed_webhook(SECRET, [text_event(user_id(), "hello")])
    tampered = body.replace(b"hello", b"hellp")
    assert harness.client.post("/webhooks/line", data=tampered, headers=good).status_code == 401
    assert _inbound(harness) == []


def test_connection_check_with_no_events_gets_200(harness: Harness) -> None:
    response = harness.post([])
    assert response.status_code == 200
    assert _inbound(harness) == []


def test_bad_json_and_bad_shape_get_problems_naming_the_field(harness: Harness) -> None:
    raw = b"{not json"
    response = harness.client.post(
        "/webhooks/line", data=raw, headers={"X-Line-Signature": sign(SECRET, raw)}
    )
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "body"
    event = text_event(user_id(), "hello")
    del event["webhookEventId"]
    response = harness.post([event])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert {"field": "events.0.webhookEventId", "message": "Field required"} in response.json[
        "errors"
    ]
    assert "Traceback" not in response.get_data(as_text=True)
    assert _inbound(harness) == []


def test_events_of_one_call_are_published_in_timestamp_order(harness: Harness) -> None:
    user = user_id()
    late = text_event(user, "second", ts=2_000_000_000_000)
    early = text_event(user, "first", ts=1_999_999_999_000)
    assert harness.post([late, early]).status_code == 200
    texts = [e.payload["event"]["message"]["text"] for e in _inbound(harness)]
    assert texts == ["first", "second"]


def test_events_without_a_user_are_acknowledged_and_dropped(harness: Harness) -> None:
    assert harness.post([join_event(), group_text_event("hi all")]).status_code == 200
    assert _inbound(harness) == []


def test_a_redelivered_event_keeps_its_event_id(harness: Harness) -> None:
    event = follow_event(user_id())
    harness.post([event])
    harness.post([redelivered(event)])
    first, second = _inbound(harness)
    assert first.event_id == second.event_id, "the worker's processed-events record drops it"


def test_broker_failure_gets_503_without_a_stack_trace(harness: Harness) -> None:
    class Down:
        def send(self, *args: object, **kwargs: object) -> None:
            raise KafkaTimeoutError("broker unreachable")

        def flush(self, timeout: float | None = None) -> None: ...

        def close(self) -> None: ...

    harness.deps.publisher._producer = Down()
    response = harness.post([text_event(user_id(), "hello")])
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "broker unreachable" not in body and "Traceback" not in body
    assert json.loads(body)["status"] == 503


class OneBadEvent:
    """A producer that refuses one record for good and takes the others."""

    def __init__(self, harness: Harness, bad_text: str, error: Exception) -> None:
        self.real = harness.broker.producer()
        self.bad_text, self.error = bad_text, error
        self.failed: list[Exception] = []

    def send(self, topic: str, key: str | None, value: bytes, headers: Any = ()) -> None:
        if self.bad_text.encode() in value:
            self.failed.append(self.error)
        else:
            self.real.send(topic, key, value, headers)

    def flush(self, timeout: float | None = None) -> None:
        failed, self.failed = self.failed, []
        if failed:
            raise failed[0]

    def close(self) -> None: ...


def test_an_event_that_can_never_be_published_is_not_a_503_forever(harness: Harness) -> None:
    """Issue 11: any publish error gave 503, so LINE redelivered a poison event forever."""
    producer = OneBadEvent(harness, "poison-text", MessageSizeTooLargeError("too large"))
    harness.deps.publisher._producer = producer
    poison = metrics.WEBHOOK_EVENTS.labels("message", "poison")
    before = poison._value.get()
    good, bad = text_event(user_id(), "hello"), text_event(user_id(), "poison-text")
    response = harness.post([good, bad])
    assert response.status_code == 200, "LINE must stop redelivering it"
    # The good one may go out twice (batch, then alone): the worker drops the repeat.
    queued = {e.payload["event"]["webhookEventId"] for e in _inbound(harness)}
    assert queued == {good["webhookEventId"]}
    assert poison._value.get() == before + 1


def test_a_serialisation_error_is_poison_but_a_broker_timeout_is_a_503(harness: Harness) -> None:
    harness.deps.publisher._producer = OneBadEvent(harness, "bad", TypeError("not JSON"))
    assert harness.post([text_event(user_id(), "bad")]).status_code == 200
    harness.deps.publisher._producer = OneBadEvent(harness, "slow", KafkaTimeoutError("60s"))
    assert harness.post([text_event(user_id(), "slow")]).status_code == 503


def test_standby_events_are_not_queued(harness: Harness) -> None:
    """Issue 11: `mode: standby` events (another channel owns the chat) were handled."""
    standby = text_event(user_id(), "hello")
    standby["mode"] = "standby"
    assert harness.post([standby]).status_code == 200
    assert _inbound(harness) == []


def test_oversized_body_is_refused(harness: Harness) -> None:
    huge = b"x" * (harness.settings.max_request_bytes + 1)
    response = harness.client.post(
        "/webhooks/line", data=huge, headers={"X-Line-Signature": sign(SECRET, huge)}
    )
    assert response.status_code == 413
