"""The delivery loop: sends committed `deliveries` rows through the LINE API.

Rows are queued by `delivery.queue` in the transaction that wants them sent. The loop
claims due rows briefly (FOR UPDATE SKIP LOCKED, then a lease), conversation messages
before a drop's pushes, calls LINE outside any transaction, and records the outcome:

* reply API while the reply token is fresh, push otherwise; "Invalid reply token" on a
  first reply falls back to push;
* every push carries the row's `retry_key` as `X-Line-Retry-Key`, so LINE delivers a
  retried push once and answers the repeat with 409 (treated as sent);
* 5xx, 429 and no answer are retried with exponential back-off, never sooner than
  Retry-After (a 429 pauses the whole loop: the limit is per channel); other 4xx fail
  the row at once;
* pushes wait for a token of the channel's push bucket (`delivery.rate`, the channel's
  `LINE_PUSH_RATE_PER_S`), and a drop's pushes are checked against its schedule when
  claimed: cancelled ones are not sent, and none goes out inside quiet hours
  (docs/interfaces.md § Campaign drops);
* with `senders` above 1 a claimed batch is attempted by that many threads at once (the
  worker uses it for throughput), and the batch's outcomes are recorded in one
  transaction, their coupon.delivered / coupon.delivery_failed events in one INSERT;
* a coupon the loop gives up on is announced with `coupon.delivery_failed`;
* a reply whose outcome is unknown (5xx, timeout, crash mid-call) is retried as a reply
  while the token lasts: if the first one did land, LINE rejects the token and the row
  counts as delivered, not pushed a second time. Once the token has lapsed the row is
  pushed: a rare duplicate (LINE took the reply but its answer was lost) is preferred
  to a lost coupon.

The module is longer than about 300 lines because claiming, sending and recording share
one lease-and-retry state machine, which reads best whole.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import ColumnElement, Table, insert, literal_column, select
from sqlalchemy.orm import Session, defer

from services.chat_agent import metrics
from services.chat_agent.delivery.drop_rules import DROP_KIND, defer_drop_pushes, drops_of
from services.chat_agent.delivery.rate import PushRate
from services.chat_agent.line.client import LineClient, LineResponse
from services.chat_agent.models import PRODUCER, Delivery, Outbox
from shared.db import unit_of_work, utcnow
from shared.events import (
    TOPIC_OF_TYPE,
    CouponDelivered,
    CouponDeliveryFailed,
    Strict,
    encode,
    make_event,
)

log = structlog.get_logger(__name__)

OUTBOX_TABLE = cast(Table, Outbox.__table__)


@dataclass(frozen=True)
class Claim:
    """One row taken for an attempt, with what the attempt needs."""

    delivery_id: uuid.UUID
    attempt: int
    channel: str
    prior_uncertain: bool
    line_user_id: str
    reply_token: str | None
    messages: list[dict[str, Any]]
    retry_key: uuid.UUID
    kind: str


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    lease_s: float = 30.0

    def backoff(self, attempt: int, retry_after_s: float | None) -> float:
        """Exponential back-off, but never sooner than the server's Retry-After."""
        wait = min(self.max_backoff_s, self.base_backoff_s * 2 ** max(0, attempt - 1))
        return max(wait, retry_after_s or 0.0)


class DeliveryLoop:
    """Claims due deliveries, sends them, records outcomes; one per worker process."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        client: LineClient,
        *,
        policy: RetryPolicy | None = None,
        batch_size: int = 20,
        poll_seconds: float = 0.05,
        clock: Callable[[], datetime] = utcnow,
        wake: threading.Event | None = None,
        push_rate: PushRate | None = None,
        senders: int = 1,
    ) -> None:
        self._sessions = session_factory
        self._client = client
        self.policy = policy or RetryPolicy()
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._clock = clock
        # Set by `kick`, or by whoever holds the same event (the worker's handlers).
        self._wake = wake or threading.Event()
        self._paused_until = 0.0
        self._push_rate = push_rate
        self._senders = max(1, senders)
        self._pool = ThreadPoolExecutor(self._senders) if self._senders > 1 else None
        self._stop: threading.Event | None = None

    def kick(self) -> None:
        """Wake the loop now: a handler just committed a delivery."""
        self._wake.set()

    def deliver_once(self) -> int:
        """One round: claim due rows and attempt each; returns how many were attempted."""
        if time.monotonic() < self._paused_until:
            return 0
        claims = self._claim()
        if self._pool is not None:
            # Sent in parallel, recorded together in one transaction.
            answers = list(self._pool.map(self._send_unless_paused, claims))
            self._record_all([(c, a) for c, a in zip(claims, answers, strict=True) if a])
            return len(claims)
        for i, claim in enumerate(claims):
            if time.monotonic() < self._paused_until:
                # Rate limited mid-batch: hand the rest back untouched for after the pause.
                self._release(claims[i:])
                break
            response = self._send(claim)
            self._record(claim, response)
        return len(claims)

    def _send_unless_paused(self, claim: Claim) -> LineResponse | None:
        """A sender thread's attempt: None when a 429 paused the channel (the row goes back
        untouched for after the pause)."""
        if time.monotonic() < self._paused_until:
            self._release([claim])
            return None
        try:
            return self._send(claim)
        except Exception:
            log.exception("delivery_attempt_failed", delivery_id=str(claim.delivery_id))
            return LineResponse(status=0, message="send failed")

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; errors are logged and retried."""
        self._stop = stop
        while not stop.is_set():
            try:
                attempted = self.deliver_once()
            except Exception:
                log.exception("delivery_loop_failed")
                attempted = 0
            if not attempted:
                self._wake.wait(self._poll_seconds)
                self._wake.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()

    # --- steps ----------------------------------------------------------------------

    def _due(self, session: Session, now: datetime, *, drops: bool, limit: int) -> list[Delivery]:
        """Up to `limit` pending deliveries due now, oldest due first: a drop's pushes or
        everything else (each through its own index), locked, skipping rows another
        sender holds."""
        if limit <= 0:
            return []
        # A literal, not a parameter: so PostgreSQL matches the partial index
        # ix_deliveries_conversation_due (kind <> 'drop_coupon') in any plan.
        drop_kind: ColumnElement[str] = literal_column(f"'{DROP_KIND}'")
        kind = Delivery.kind == drop_kind if drops else Delivery.kind != drop_kind
        return list(
            session.execute(
                select(Delivery)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now, kind)
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )

    def _claim(self) -> list[Claim]:
        now = self._clock()
        claims: list[Claim] = []
        with unit_of_work(self._sessions) as session:
            # Conversation first (replies whose token is running out, greetings, thanks),
            # then a drop's pushes: a reply must never wait behind a backlog of pushes.
            rows = self._due(session, now, drops=False, limit=self._batch_size)
            rows += self._due(session, now, drops=True, limit=self._batch_size - len(rows))
            drop_rows = [r for r in rows if r.kind == DROP_KIND]
            deferred = defer_drop_pushes(session, drop_rows, now) if drop_rows else set()
            for row in rows:
                if row.delivery_id in deferred:
                    continue
                fresh = bool(row.reply_token and row.reply_deadline and now < row.reply_deadline)
                channel = "reply" if fresh and row.channel != "push" else "push"
                prior_uncertain = row.reply_uncertain
                row.attempts += 1
                row.channel = channel
                # The lease: if this process dies mid-call the row comes due again.
                row.next_attempt_at = now + timedelta(seconds=self.policy.lease_s)
                if channel == "reply":
                    row.reply_uncertain = True
                claims.append(
                    Claim(
                        delivery_id=row.delivery_id,
                        attempt=row.attempts,
                        channel=channel,
                        prior_uncertain=prior_uncertain,
                        line_user_id=row.line_user_id,
                        reply_token=row.reply_token,
                        messages=list(row.messages),
                        retry_key=row.retry_key,
                        kind=row.kind,
                    )
                )
        return claims

    def _release(self, claims: list[Claim]) -> None:
        with unit_of_work(self._sessions) as session:
            for claim in claims:
                row = session.get(Delivery, claim.delivery_id, with_for_update=True)
                if row is not None and row.status == "pending" and row.attempts == claim.attempt:
                    row.attempts -= 1
                    row.reply_uncertain = claim.prior_uncertain
                    row.next_attempt_at = self._clock() + timedelta(
                        seconds=max(0.0, self._paused_until - time.monotonic())
                    )

    def _send(self, claim: Claim) -> LineResponse:
        started = time.perf_counter()
        if claim.channel == "reply":
            assert claim.reply_token is not None
            response = self._client.reply(claim.reply_token, claim.messages)
        else:
            if self._push_rate is not None and not self._push_rate.acquire(self._stop):
                return LineResponse(status=0, message="stopping")  # retried after restart
            response = self._client.push(claim.line_user_id, claim.messages, claim.retry_key)
        metrics.LINE_API_SECONDS.labels(claim.channel).observe(time.perf_counter() - started)
        return response

    def _record(self, claim: Claim, response: LineResponse) -> None:
        self._record_all([(claim, response)])

    def _record_all(self, attempts: list[tuple[Claim, LineResponse]]) -> None:
        """Record the outcomes of some attempts in one transaction, then count and log them."""
        if not attempts:
            return
        outcomes: list[tuple[Claim, LineResponse, str]] = []
        events: list[dict[str, Any]] = []  # coupon.delivered / .delivery_failed outbox rows
        with unit_of_work(self._sessions) as session:
            ids = [claim.delivery_id for claim, _ in attempts]
            rows = {
                r.delivery_id: r
                for r in session.scalars(
                    select(Delivery)
                    .where(Delivery.delivery_id.in_(ids))
                    .options(defer(Delivery.messages))  # sent already: not read again
                    .with_for_update()
                )
            }
            drops = drops_of(session, [c.delivery_id for c, _ in attempts if c.kind == DROP_KIND])
            for claim, response in attempts:
                row = rows.get(claim.delivery_id)
                if row is None or row.status != "pending" or row.attempts != claim.attempt:
                    continue  # cancelled meanwhile, or our lease lapsed and another took it
                outcome = self._apply(row, claim, response, drops.get(row.delivery_id), events)
                outcomes.append((claim, response, outcome))
            if events:
                session.execute(insert(OUTBOX_TABLE), events)  # one statement for the batch
        for claim, response, outcome in outcomes:
            metrics.DELIVERIES.labels(claim.kind, outcome).inc()
            log_fn = log.warning if outcome in ("retry", "failed") else log.info
            log_fn(
                "delivery_attempt",
                delivery_id=str(claim.delivery_id),
                kind=claim.kind,
                channel=claim.channel,
                attempt=claim.attempt,
                status=response.status,
                outcome=outcome,
                error=response.message[:200] if not response.ok else None,
            )

    def _apply(
        self,
        row: Delivery,
        claim: Claim,
        response: LineResponse,
        drop_id: str | None,
        events: list[dict[str, Any]],
    ) -> str:
        """One attempt's outcome on its row (and its event in `events`); returns the
        outcome's name."""
        now = self._clock()
        if response.ok or (claim.channel == "push" and response.status == 409):
            self._mark_sent(row, claim.channel, response, drop_id, events)
            return "sent"
        if claim.channel == "reply" and response.invalid_reply_token:
            if claim.prior_uncertain:
                # An earlier reply may have used the token: it landed, don't push again.
                self._mark_sent(row, "reply", response, drop_id, events)
                return "sent_assumed"
            row.channel, row.reply_uncertain, row.next_attempt_at = "push", False, now
            return "fallback_push"
        row.last_error = f"{response.status} {response.message}"[:500]
        if response.retryable and row.attempts < self.policy.max_attempts:
            wait = self.policy.backoff(row.attempts, response.retry_after_s)
            row.next_attempt_at = now + timedelta(seconds=wait)
            if response.status == 429:
                row.reply_uncertain = claim.prior_uncertain  # 429: nothing was processed
                self._paused_until = time.monotonic() + (response.retry_after_s or wait)
            return "retry"
        row.status = "failed"
        fields = _coupon_fields(row, drop_id)
        if fields is not None:
            event = CouponDeliveryFailed(reason=row.last_error[:200], **fields)
            events.append(_outbox_row("coupon.delivery_failed", event, row.customer_id))
        return "failed"

    def _mark_sent(
        self,
        row: Delivery,
        channel: str,
        response: LineResponse,
        drop_id: str | None,
        events: list[dict[str, Any]],
    ) -> None:
        row.status, row.channel, row.sent_at = "sent", channel, self._clock()
        row.line_request_id = response.accepted_request_id or response.request_id
        row.last_error = None
        fields = _coupon_fields(row, drop_id)
        if fields is not None:
            event = CouponDelivered(channel="reply" if channel == "reply" else "push", **fields)
            events.append(_outbox_row("coupon.delivered", event, row.customer_id))


def _outbox_row(event_type: str, payload: Strict, key: str) -> dict[str, Any]:
    """An event as an outbox row (shared/outbox.py's columns), for one multi-row INSERT."""
    envelope = make_event(event_type, payload, key=key, producer=PRODUCER)
    return {
        "event_id": envelope.event_id,
        "topic": TOPIC_OF_TYPE[event_type],
        "key": key,
        "body": encode(envelope).decode("utf-8"),
    }


def _coupon_fields(row: Delivery, drop_id: str | None) -> dict[str, Any] | None:
    """What coupon.delivered and coupon.delivery_failed say of a coupon's delivery (None:
    the row carried no coupon)."""
    if not (row.coupon_code and row.campaign_id and row.request_id):
        return None
    return {
        "code": row.coupon_code,
        "customer_id": row.customer_id,
        "campaign_id": row.campaign_id,
        "request_id": row.request_id,
        "drop_id": drop_id,
    }
