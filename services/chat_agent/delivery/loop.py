"""The delivery loop: sends committed `deliveries` rows through the LINE API.

Rows are queued by `delivery.queue` in the transaction that wants them sent. The loop
claims due rows briefly (FOR UPDATE SKIP LOCKED, then a lease), calls LINE outside any
transaction, and records the outcome:

* reply API while the reply token is fresh, push otherwise; "Invalid reply token" on a
  first reply falls back to push;
* every push carries the row's `retry_key` as `X-Line-Retry-Key`, so LINE delivers a
  retried push once and answers the repeat with 409 (treated as sent);
* 5xx, 429 and no answer are retried with exponential back-off, never sooner than
  Retry-After (a 429 pauses the whole loop: the limit is per channel); other 4xx fail
  the row at once;
* a reply whose outcome is unknown (5xx, timeout, crash mid-call) is retried as a reply
  while the token lasts: if the first one did land, LINE rejects the token and the row
  counts as delivered, not pushed a second time. Once the token has lapsed the row is
  pushed: a rare duplicate (LINE took the reply but its answer was lost) is preferred
  to a lost coupon.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.line.client import LineClient, LineResponse
from services.chat_agent.models import PRODUCER, Delivery, Outbox
from shared.db import unit_of_work, utcnow
from shared.events import CouponDelivered
from shared.outbox import add_event

log = structlog.get_logger(__name__)


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

    def kick(self) -> None:
        """Wake the loop now: a handler just committed a delivery."""
        self._wake.set()

    def deliver_once(self) -> int:
        """One round: claim due rows and attempt each; returns how many were attempted."""
        if time.monotonic() < self._paused_until:
            return 0
        claims = self._claim()
        for i, claim in enumerate(claims):
            if time.monotonic() < self._paused_until:
                # Rate limited mid-batch: hand the rest back untouched for after the pause.
                self._release(claims[i:])
                break
            response = self._send(claim)
            self._record(claim, response)
        return len(claims)

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; errors are logged and retried."""
        while not stop.is_set():
            try:
                attempted = self.deliver_once()
            except Exception:
                log.exception("delivery_loop_failed")
                attempted = 0
            if not attempted:
                self._wake.wait(self._poll_seconds)
                self._wake.clear()
        self._client.close()

    # --- steps ----------------------------------------------------------------------

    def _claim(self) -> list[Claim]:
        now = self._clock()
        claims: list[Claim] = []
        with unit_of_work(self._sessions) as session:
            rows = (
                session.execute(
                    select(Delivery)
                    .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                    .order_by(Delivery.next_attempt_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for row in rows:
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
            response = self._client.push(claim.line_user_id, claim.messages, claim.retry_key)
        metrics.LINE_API_SECONDS.labels(claim.channel).observe(time.perf_counter() - started)
        return response

    def _record(self, claim: Claim, response: LineResponse) -> None:
        outcome = "sent"
        with unit_of_work(self._sessions) as session:
            row = session.get(Delivery, claim.delivery_id, with_for_update=True)
            if row is None or row.status != "pending" or row.attempts != claim.attempt:
                return  # cancelled meanwhile, or our lease lapsed and another took it
            now = self._clock()
            if response.ok or (claim.channel == "push" and response.status == 409):
                self._mark_sent(session, row, claim.channel, response)
            elif claim.channel == "reply" and response.invalid_reply_token:
                if claim.prior_uncertain:
                    # An earlier reply may have used the token: it landed, don't push again.
                    self._mark_sent(session, row, "reply", response)
                    outcome = "sent_assumed"
                else:
                    row.channel, row.reply_uncertain, row.next_attempt_at = "push", False, now
                    outcome = "fallback_push"
            elif response.retryable and row.attempts < self.policy.max_attempts:
                wait = self.policy.backoff(row.attempts, response.retry_after_s)
                row.next_attempt_at = now + timedelta(seconds=wait)
                row.last_error = f"{response.status} {response.message}"[:500]
                if response.status == 429:
                    row.reply_uncertain = claim.prior_uncertain  # 429: nothing was processed
                    self._paused_until = time.monotonic() + (response.retry_after_s or wait)
                outcome = "retry"
            else:
                row.status = "failed"
                row.last_error = f"{response.status} {response.message}"[:500]
                outcome = "failed"
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

    def _mark_sent(
        self, session: Session, row: Delivery, channel: str, response: LineResponse
    ) -> None:
        row.status, row.channel, row.sent_at = "sent", channel, self._clock()
        row.line_request_id = response.accepted_request_id or response.request_id
        row.last_error = None
        if row.coupon_code and row.campaign_id and row.request_id:
            add_event(
                session,
                Outbox,
                "coupon.delivered",
                CouponDelivered(
                    code=row.coupon_code,
                    customer_id=row.customer_id,
                    campaign_id=row.campaign_id,
                    request_id=row.request_id,
                    channel="reply" if channel == "reply" else "push",
                ),
                key=row.customer_id,
                producer=PRODUCER,
            )
