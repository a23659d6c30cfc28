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
  claimed (or when queued, for those handed over claimed: delivery.handoff): cancelled
  ones are not sent, and none goes out inside quiet hours (docs/interfaces.md § Campaign
  drops); one cancelled while its attempt was in flight is recorded as LINE answered;
* with a `sender` (the worker's, `delivery.curl`) a claimed batch is attempted all at
  once, many requests in flight from one thread, and the batch's outcomes are recorded
  in one transaction (`delivery.outcomes`: on PostgreSQL the delivered rows in one
  UPDATE), their coupon.delivered / coupon.delivery_failed events in one INSERT;
* rows are claimed and recorded as plain columns (SQLAlchemy Core), never as ORM objects:
  at a drop's rate the ORM's loading and change tracking cost more CPU than the push;
* a coupon the loop gives up on is announced with `coupon.delivery_failed`;
* a reply whose outcome is unknown (5xx, timeout, crash mid-call) is retried as a reply
  while the token lasts: if the first one did land, LINE rejects the token and the row
  counts as delivered, not pushed a second time. Once the token has lapsed the row is
  pushed: a rare duplicate (LINE took the reply but its answer was lost) is preferred
  to a lost coupon.

Claiming (which rows are due, the lease) is `delivery.claims`.
This module is longer than about 300 lines because sending and recording share one
lease-and-retry state machine, which reads best whole.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    bindparam,
    select,
    update,
)
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.delivery.claims import claim_due
from services.chat_agent.delivery.curl import CurlSender
from services.chat_agent.delivery.drop_rules import DELIVERIES, DROP_KIND, PUSHES
from services.chat_agent.delivery.handoff import Handoff
from services.chat_agent.delivery.outcomes import (
    AnyRow,
    Attempt,
    Claim,
    Outcome,
    count_and_log,
    coupon_fields,
    record_sent_in_bulk,
    sent_channel,
    sent_outcome,
)
from services.chat_agent.delivery.rate import PushRate
from services.chat_agent.line.client import LineClient, LineResponse
from services.chat_agent.models import PRODUCER, Delivery, Outbox
from shared.db import unit_of_work, utcnow
from shared.outbox import Draft, outbox_rows, outbox_writer

log = structlog.get_logger(__name__)

OUTBOX_ROWS = outbox_writer(Outbox)  # a batch's events, one statement
# A row our attempt may still record: pending, or cancelled while the attempt was in flight
# (if LINE took it, it was sent: delivery.outcomes).
LIVE = ("pending", "cancelled")
# What recording an outcome reads (Core rows: the ORM's objects and their change tracking
# cost more CPU per push than the push itself).
_RECORDED = (
    DELIVERIES.c.delivery_id,
    DELIVERIES.c.status,
    DELIVERIES.c.attempts,
    DELIVERIES.c.customer_id,
    DELIVERIES.c.coupon_code,
    DELIVERIES.c.campaign_id,
    DELIVERIES.c.request_id,
    PUSHES.c.drop_id,
)


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
        client: LineClient | None,
        *,
        sender: CurlSender | None = None,
        policy: RetryPolicy | None = None,
        batch_size: int = 20,
        poll_seconds: float = 0.05,
        clock: Callable[[], datetime] = utcnow,
        wake: threading.Event | None = None,
        push_rate: PushRate | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        """Attempts go one after another through `client`, or a batch at a time, all at
        once, through `sender` (the worker's; one of the two is needed). With `handoff`,
        claims handed by this process's handlers are attempted first, unclaimed
        (delivery.handoff)."""
        if client is None and sender is None:
            raise ValueError("a delivery loop needs a client or a sender")
        self._sessions = session_factory
        self._client = client
        self._sender = sender
        self.policy = policy or RetryPolicy()
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._clock = clock
        # Set by `kick`, or by whoever holds the same event (the worker's handlers).
        self._wake = wake or threading.Event()
        self._paused_until = 0.0
        self._push_rate = push_rate
        self._stop: threading.Event | None = None
        self._handoff = handoff
        self._handed_only = False  # the last round attempted handed claims and no others
        self._claimed_at = 0.0  # time.monotonic() of the last claim

    def kick(self) -> None:
        """Wake the loop now: a handler just committed a delivery."""
        self._wake.set()

    def deliver_once(self) -> int:
        """One round: claim due rows and attempt each; returns how many were attempted."""
        if time.monotonic() < self._paused_until:
            if self._handoff is not None:  # leased, they would lapse if the pause is long
                self._release_handed(self._handoff.take())
            return 0
        # At most three quarters of a batch of handed claims: a stream of a drop's handed
        # pushes leaves room for what must be claimed (conversation messages, retries).
        handoff, most = self._handoff, self._batch_size * 3 // 4
        handed = handoff.take(most) if handoff is not None else []
        # Handed rows are claimed already: no claim transaction before the call. Whatever
        # else is due is claimed when nothing was handed (a kick, or the idle poll) and, so
        # a stream of hand-offs cannot starve retries and pushes, once a poll interval.
        self._handed_only = bool(handed) and not self._claim_overdue()
        claims = handed if self._handed_only else handed + self._claim(len(handed))
        # Conversation messages before a drop's pushes (those wait for the push bucket).
        claims.sort(key=lambda claim: claim.kind == DROP_KIND)
        if self._sender is not None:
            # Attempted all at once, recorded together in one transaction.
            self._record_all(self._sender.send_all(claims, self._ready))
            return len(claims)
        for i, claim in enumerate(claims):
            if time.monotonic() < self._paused_until:
                # Rate limited mid-batch: hand the rest back untouched for after the pause.
                self._release(claims[i:])
                break
            response = self._send(claim)
            self._record(claim, response)
        return len(claims)

    def _ready(self, claim: Claim) -> float | None:
        """Whether the sender may attempt `claim` now (0), after a wait for the channel's
        push bucket (seconds), or not in this batch (None: the channel is paused by a 429
        or the worker is stopping; the row goes back untouched)."""
        stopping = self._stop is not None and self._stop.is_set()
        if stopping or time.monotonic() < self._paused_until:
            self._release([claim])
            return None
        if claim.channel == "push" and self._push_rate is not None:
            return self._push_rate.take()
        return 0.0

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; errors are logged and retried."""
        self._stop = stop
        if self._handoff is not None:
            self._handoff.attach(self._wake, self.policy.lease_s, capacity=self._batch_size)
        while not stop.is_set():
            self._wake.clear()  # a kick from here on wakes the next wait
            try:
                attempted = self.deliver_once()
            except Exception:
                log.exception("delivery_loop_failed")
                attempted = 0
            if not attempted or self._handed_only:
                # After hand-offs alone, nothing says more is due: the next hand-off or
                # kick wakes the loop, or the poll interval does.
                self._wake.wait(self._poll_seconds)
        if self._handoff is not None:
            self._release_handed(self._handoff.detach())
        for transport in (self._client, self._sender):
            if transport is not None:
                transport.close()

    # --- steps ----------------------------------------------------------------------

    def _claim(self, handed: int = 0) -> list[Claim]:
        """Claim what is due, up to the batch size less the `handed` claims in hand."""
        self._claimed_at = time.monotonic()
        now = self._clock()
        lease = now + timedelta(seconds=self.policy.lease_s)
        with unit_of_work(self._sessions) as session:
            return claim_due(session, now, lease, self._batch_size - handed)

    def _claim_overdue(self) -> bool:
        return time.monotonic() - self._claimed_at >= self._poll_seconds

    def _release_handed(self, claims: list[Claim]) -> None:
        """Hand back what was handed and will not be attempted now (stopping, or the
        channel paused by a 429): due again at once, or when the pause ends."""
        if claims:
            try:
                self._release(claims)
            except Exception:  # their leases lapse instead: sent after the next start
                log.exception("delivery_release_failed", claims=len(claims))

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
        assert self._client is not None  # without a sender, attempts go through the client
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

    def _record_all(self, attempts: Sequence[Attempt]) -> None:
        """Record the outcomes of some attempts in one transaction (the delivered ones in
        one statement on PostgreSQL, the rest row by row; their coupon.delivered /
        .delivery_failed events in one INSERT), then count and log them."""
        if not attempts:
            return
        now = self._clock()
        outcomes: list[Outcome] = []
        events: list[Draft] = []  # coupon.delivered / .delivery_failed
        with unit_of_work(self._sessions) as session:
            sent = [(c, r) for c, r in attempts if sent_outcome(c, r)]
            in_bulk = record_sent_in_bulk(session, sent, now, events) if sent else None
            if in_bulk is not None:
                outcomes += in_bulk
                attempts = [(c, r) for c, r in attempts if not sent_outcome(c, r)]
            outcomes += self._record_each(session, attempts, now, events)
            # Validated together, one statement for the batch (shared.outbox.outbox_rows).
            OUTBOX_ROWS.write(session.connection(), outbox_rows(events, PRODUCER, now))
        count_and_log(outcomes)

    def _record_each(
        self,
        session: Session,
        attempts: Sequence[Attempt],
        now: datetime,
        events: list[Draft],
    ) -> list[Outcome]:
        """Record attempts row by row: each row's new values, then one UPDATE per shape."""
        if not attempts:
            return []
        outcomes: list[Outcome] = []
        changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # columns → rows' values
        rows = {
            r.delivery_id: r
            for r in session.execute(
                select(*_RECORDED)
                .select_from(
                    DELIVERIES.outerjoin(PUSHES, PUSHES.c.delivery_id == DELIVERIES.c.delivery_id)
                )
                .where(DELIVERIES.c.delivery_id.in_([c.delivery_id for c, _ in attempts]))
                .with_for_update(of=DELIVERIES)
            )
        }
        for claim, response in attempts:
            row = rows.get(claim.delivery_id)
            if row is None or row.attempts != claim.attempt or row.status not in LIVE:
                continue  # our lease lapsed and another sender took it, or it was sent
            if row.status == "cancelled" and not sent_outcome(claim, response):
                continue  # cancelled meanwhile and not sent: it stays cancelled
            change: dict[str, Any] = {}
            outcome = self._apply(row, claim, response, now, change, events)
            changes.setdefault(tuple(sorted(change)), []).append(
                {"b_id": claim.delivery_id, **{f"b_{k}": v for k, v in change.items()}}
            )
            outcomes.append((claim, response, outcome))
        for columns, values in changes.items():
            session.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.delivery_id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in columns}),
                values,
            )
        return outcomes

    def _apply(
        self,
        row: AnyRow,
        claim: Claim,
        response: LineResponse,
        now: datetime,
        change: dict[str, Any],
        events: list[Draft],
    ) -> str:
        """One attempt's outcome: the row's new column values in `change` (its event in
        `events`); returns the outcome's name."""
        delivered = sent_outcome(claim, response)
        if delivered is not None:
            channel = sent_channel(claim)
            line_request_id = response.accepted_request_id or response.request_id
            change.update(status="sent", channel=channel, sent_at=now, last_error=None)
            change["line_request_id"] = line_request_id
            fields = coupon_fields(row)
            if fields is not None:
                delivered_event = {"channel": channel, **fields}
                events.append(Draft("coupon.delivered", row.customer_id, delivered_event))
            return delivered
        if claim.channel == "reply" and response.invalid_reply_token:
            change.update(channel="push", reply_uncertain=False, next_attempt_at=now)
            return "fallback_push"
        error = f"{response.status} {response.message}"[:500]
        change["last_error"] = error
        if response.retryable and claim.attempt < self.policy.max_attempts:
            wait = self.policy.backoff(claim.attempt, response.retry_after_s)
            change["next_attempt_at"] = now + timedelta(seconds=wait)
            if response.status == 429:
                change["reply_uncertain"] = claim.prior_uncertain  # 429: nothing was processed
                self._paused_until = time.monotonic() + (response.retry_after_s or wait)
            return "retry"
        change["status"] = "failed"
        fields = coupon_fields(row)
        if fields is not None:
            failed = {"reason": error[:200], **fields}
            events.append(Draft("coupon.delivery_failed", row.customer_id, failed))
        return "failed"
