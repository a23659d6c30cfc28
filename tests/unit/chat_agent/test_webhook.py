"""The webhook endpoint: signature, validation, publishing to chat.inbound."""

from __future__ import annotations

import json

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
            raise RuntimeError("broker unreachable")

        def flush(self, timeout: float | None = None) -> None: ...

        def close(self) -> None: ...

    harness.deps.publisher._producer = Down()
    response = harness.post([text_event(user_id(), "hello")])
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "broker unreachable" not in body and "Traceback" not in body
    assert json.loads(body)["status"] == 503


def test_oversized_body_is_refused(harness: Harness) -> None:
    huge = b"x" * (harness.settings.max_request_bytes + 1)
    response = harness.client.post(
        "/webhooks/line", data=huge, headers={"X-Line-Signature": sign(SECRET, huge)}
    )
    assert response.status_code == 413
