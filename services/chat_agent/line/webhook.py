"""`POST /webhooks/line`: check the signature, queue the events, answer 200 fast.

No conversation work happens in the request. Each event is published to `chat.inbound`
(keyed by the sender's pseudonym, so one customer's events stay in order) and the
endpoint answers only once the broker acknowledged it: a 200 means the events are
durable. If the broker cannot take them the answer is 503 and LINE redelivers. An
event that can never be published (it does not serialise, or the broker refuses the
record itself) is different: LINE would redeliver it forever, so it is logged without
its content, counted as `poison`, and answered 200 with the rest.

Standby events (another channel owns the chat, LINE's module mode) are not ours to
handle: they are counted and dropped here.

Duplicates: the envelope id is derived from `webhookEventId`, and the worker records
every id it applied, which is the truth. Redis holds a fast-path "seen" mark, set only
after a successful publish (setting it before could drop an event whose publish then
failed) and looked up for LINE's redeliveries; when Redis is down the fast path is
skipped, never the event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
import structlog
from flask import Blueprint, Response, request
from kafka import errors as kafka_errors
from pydantic import BaseModel, ConfigDict, ValidationError

from services.chat_agent import metrics
from services.chat_agent.line.events import LineEvent, WebhookBody, customer_id_for
from services.chat_agent.line.signature import verify
from services.chat_agent.models import PRODUCER
from shared.bus import Producer
from shared.events import CHAT_INBOUND, Envelope, encode, make_event
from shared.http import (
    Operation,
    ProblemError,
    field_problem,
    invalid,
    json_from,
    validation_errors,
)

log = structlog.get_logger(__name__)

SEEN_PREFIX = "ca:webhook-seen:"
SEEN_TTL_S = 24 * 3600
# Broker errors about the record itself: sending it again can never succeed.
_RECORD_ERRORS = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidRecordError,
    kafka_errors.CorruptRecordError,
)


def broker_unavailable(exc: BaseException) -> bool:
    """True when the broker (not the event) failed: worth a 503 so LINE redelivers."""
    if isinstance(exc, _RECORD_ERRORS):
        return False
    return isinstance(exc, kafka_errors.KafkaError | OSError | TimeoutError)


class Unavailable(Exception):
    """The broker could not take the events; LINE should redeliver them."""


# The `200 {}` answer: the events are durable on `chat.inbound`. (No docstring: it would
# become the schema's description in /openapi.json.)
class WebhookAck(BaseModel):
    model_config = ConfigDict(extra="forbid")


OPERATIONS = [
    Operation(
        "POST",
        "/webhooks/line",
        "LINE Messaging API webhook (X-Line-Signature: base64 HMAC-SHA256 of the raw body)",
        request_model=WebhookBody,
        response_model=WebhookAck,
        secured=False,
        parameters=[
            {
                "name": "X-Line-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            }
        ],
    ),
]


class WebhookPublisher:
    """Publishes webhook events to `chat.inbound` and waits for the broker's ack.

    One long-lived producer per process (gunicorn worker), created on first use so
    nothing connects at import or app-creation time.
    """

    def __init__(
        self,
        producer_factory: Callable[[], Producer],
        secret_key: str,
        seen: redis.Redis | None,
        *,
        ack_timeout_s: float = 1.5,
    ) -> None:
        self._factory = producer_factory
        self._secret_key = secret_key
        self._seen = seen
        self._ack_timeout_s = ack_timeout_s
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def producer(self) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = self._factory()
            return self._producer

    def publish(self, destination: str, events: list[tuple[LineEvent, dict[str, Any]]]) -> int:
        """Publish the events not seen before; returns how many were published.

        Raises Unavailable when the broker failed; an event that can never be published
        is counted as `poison` and skipped.
        """
        fresh = self._unseen(events)
        if not fresh:
            return 0
        try:
            self._send_all(destination, fresh)
        except Exception as exc:
            if broker_unavailable(exc):
                raise Unavailable(type(exc).__name__) from exc
            # One of them cannot be published: find which, one at a time (a repeat of
            # one that did go out is dropped by the worker's processed-events record).
            fresh = [pair for pair in fresh if self._send_alone(destination, pair)]
        self._mark_seen([event for event, _ in fresh])
        for event, _ in fresh:
            metrics.WEBHOOK_EVENTS.labels(event.type, "queued").inc()
        return len(fresh)

    def _send_all(self, destination: str, pairs: list[tuple[LineEvent, dict[str, Any]]]) -> None:
        producer = self.producer()
        for event, raw in pairs:
            envelope = self._envelope(destination, event, raw)
            producer.send(CHAT_INBOUND, envelope.key, encode(envelope))
        producer.flush(timeout=self._ack_timeout_s)

    def _send_alone(self, destination: str, pair: tuple[LineEvent, dict[str, Any]]) -> bool:
        """Publish one event; False (logged, counted) when it can never be published."""
        try:
            self._send_all(destination, [pair])
        except Exception as exc:
            if broker_unavailable(exc):
                raise Unavailable(type(exc).__name__) from exc
            event = pair[0]
            metrics.WEBHOOK_EVENTS.labels(event.type, "poison").inc()
            # The id and the error class only: the event carries a user id and a text.
            log.error(
                "webhook_event_unpublishable",
                event_type=event.type,
                webhook_event_id=event.webhook_event_id,
                error=type(exc).__name__,
            )
            return False
        return True

    def _envelope(self, destination: str, event: LineEvent, raw: dict[str, Any]) -> Envelope:
        assert event.user_id is not None
        return make_event(
            "line.webhook_event",
            {"destination": destination, "event": raw},
            key=customer_id_for(self._secret_key, event.user_id),
            producer=PRODUCER,
            occurred_at=datetime.fromtimestamp(event.timestamp / 1000, UTC),
            event_id=event.envelope_id,
        )

    def _unseen(
        self, events: list[tuple[LineEvent, dict[str, Any]]]
    ) -> list[tuple[LineEvent, dict[str, Any]]]:
        # Only LINE's redeliveries are looked up: a first delivery is almost never a
        # repeat, and the round trip would be paid on every call. Repeats that slip
        # through are dropped by the worker's processed-events record.
        again = [e.webhook_event_id for e, _ in events if e.delivery_context.is_redelivery]
        if self._seen is None or not again:
            return events
        try:
            flags = dict(zip(again, self._seen.mget([SEEN_PREFIX + i for i in again]), strict=True))
        except redis.RedisError as exc:
            log.warning("webhook_seen_check_unavailable", error=str(exc)[:200])
            return events
        fresh = []
        for event, raw in events:
            if flags.get(event.webhook_event_id):
                metrics.WEBHOOK_EVENTS.labels(event.type, "duplicate").inc()
            else:
                fresh.append((event, raw))
        return fresh

    def _mark_seen(self, events: list[LineEvent]) -> None:
        if self._seen is None:
            return
        try:
            pipe = self._seen.pipeline(transaction=False)
            for event in events:
                pipe.set(SEEN_PREFIX + event.webhook_event_id, "1", ex=SEEN_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("webhook_seen_mark_failed", error=str(exc)[:200])

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None


def webhook_blueprint(channel_secret: str, publisher: WebhookPublisher) -> Blueprint:
    """POST /webhooks/line: verify with `channel_secret`, queue through `publisher`."""
    bp = Blueprint("webhook", __name__)

    @bp.post("/webhooks/line")
    def line_webhook() -> Response:
        """Receive LINE webhook events (docs/interfaces.md § Messaging webhook)."""
        started = time.perf_counter()
        raw = request.get_data(cache=True)
        if not verify(channel_secret, raw, request.headers.get("X-Line-Signature")):
            metrics.WEBHOOK_REJECTED.labels("signature").inc()
            raise field_problem(
                401,
                "Unauthorized",
                "missing or invalid X-Line-Signature",
                field="X-Line-Signature",
                message="does not match the body",
            )
        body, raw_events = _parse(raw)
        pairs: list[tuple[LineEvent, dict[str, Any]]] = []
        for event, raw_event in zip(body.events, raw_events, strict=True):
            if event.user_id and event.mode != "standby":
                pairs.append((event, raw_event))
            else:
                # No user to answer (e.g. a group event without a userId), or another
                # channel is in charge of this chat (standby): nothing to do.
                metrics.WEBHOOK_EVENTS.labels(event.type, "ignored").inc()
        pairs.sort(key=lambda pair: pair[0].timestamp)  # stable: same-ms events keep order
        try:
            published = publisher.publish(body.destination, pairs)
        except Unavailable as exc:
            metrics.WEBHOOK_REJECTED.labels("broker").inc()
            log.error("webhook_publish_failed", events=len(pairs), error=str(exc))
            raise ProblemError(
                503, "Service Unavailable", "events could not be queued; redeliver later"
            ) from None
        metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - started)
        log.debug("webhook_accepted", events=len(body.events), published=published)
        return Response("{}", status=200, mimetype="application/json")

    return bp


def _parse(raw: bytes) -> tuple[WebhookBody, list[dict[str, Any]]]:
    data = json_from(raw)
    try:
        body = WebhookBody.model_validate(data)
    except ValidationError as exc:
        raise invalid("the body is not a LINE webhook", validation_errors(exc)) from None
    return body, list(data["events"])
