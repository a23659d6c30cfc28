"""Recording what LINE answered the delivery loop: rows marked sent, events for coupons,
metrics and logs (docs/interfaces.md § Campaign drops, "Throughput").

Almost every attempt of a drop simply goes out. On PostgreSQL a batch's sent rows are
recorded by one statement: an UPDATE from arrays of (delivery id, attempt, channel, LINE
request id), guarded like the row-by-row path (still pending, still our attempt) and
returning what the coupon.delivered events need. A row cancelled while its attempt was in
flight (a drop cancelled, a customer who unfollowed) is recorded sent all the same: LINE
took it, and the drop's counts must say so. Before it, a batch of 256 outcomes went
through ORM rows and an executemany of 256 parameter sets, ~40% of the loop's CPU. Any
other outcome (a retry, a failure, a fallback to push), and every outcome on SQLite, takes
the row-by-row path in `delivery.loop`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy import Row, bindparam, text
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.line.client import LineResponse
from services.chat_agent.models import SCHEMA
from shared.db import UTCDateTime
from shared.outbox import Draft

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Claim:
    """One row the delivery loop took for an attempt, with what the attempt needs."""

    delivery_id: uuid.UUID
    attempt: int
    channel: str
    prior_uncertain: bool
    line_user_id: str
    reply_token: str | None
    messages: list[dict[str, Any]]
    retry_key: uuid.UUID
    kind: str


AnyRow = Row[*tuple[Any, ...]]  # a Core row, read by column name
Attempt = tuple[Claim, LineResponse]
Outcome = tuple[Claim, LineResponse, str]

_SENT = text(
    f"""
    UPDATE {SCHEMA}.deliveries AS d
    SET status = 'sent', channel = v.channel, sent_at = :now, last_error = NULL,
        line_request_id = v.line_request_id
    FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS integer[]),
                CAST(:channels AS varchar[]), CAST(:line_request_ids AS varchar[]))
         AS v(delivery_id, attempt, channel, line_request_id)
    WHERE d.delivery_id = v.delivery_id AND d.status IN ('pending', 'cancelled')
        AND d.attempts = v.attempt
    RETURNING d.delivery_id, d.customer_id, d.coupon_code, d.campaign_id, d.request_id,
        (SELECT p.drop_id FROM {SCHEMA}.drop_pushes AS p
         WHERE p.delivery_id = d.delivery_id) AS drop_id
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


def sent_outcome(claim: Claim, response: LineResponse) -> str | None:
    """ "sent" or "sent_assumed" when the attempt delivered the message, else None."""
    if response.ok or (claim.channel == "push" and response.status == 409):
        return "sent"
    if claim.channel == "reply" and response.invalid_reply_token and claim.prior_uncertain:
        return "sent_assumed"  # an earlier reply may have used the token: it landed
    return None


def sent_channel(claim: Claim) -> Literal["reply", "push"]:
    """The channel a delivered message went by ("sent_assumed": by the earlier reply)."""
    return "reply" if claim.channel == "reply" else "push"


def record_sent_in_bulk(
    session: Session, attempts: Sequence[Attempt], now: datetime, events: list[Draft]
) -> list[Outcome] | None:
    """Mark delivered attempts sent in one statement (PostgreSQL; None elsewhere: the
    caller records them row by row), their coupons' events added to `events`."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    by_id = {claim.delivery_id: (claim, response) for claim, response in attempts}
    found = session.execute(
        _SENT,
        {
            "now": now,
            "ids": list(by_id),
            "attempts": [claim.attempt for claim, _ in attempts],
            "channels": [sent_channel(claim) for claim, _ in attempts],
            "line_request_ids": [r.accepted_request_id or r.request_id for _, r in attempts],
        },
    )
    outcomes: list[Outcome] = []
    for row in found:  # only the rows still ours: lease not lapsed
        claim, response = by_id[row.delivery_id]
        outcome = sent_outcome(claim, response) or "sent"
        outcomes.append((claim, response, outcome))
        fields = coupon_fields(row)
        if fields is not None:
            delivered = {"channel": sent_channel(claim), **fields}
            events.append(Draft("coupon.delivered", row.customer_id, delivered))
    return outcomes


def coupon_fields(row: AnyRow) -> dict[str, Any] | None:
    """What coupon.delivered and coupon.delivery_failed say of a coupon's delivery (None:
    the row carried no coupon)."""
    if not (row.coupon_code and row.campaign_id and row.request_id):
        return None
    return {
        "code": row.coupon_code,
        "customer_id": row.customer_id,
        "campaign_id": row.campaign_id,
        "request_id": row.request_id,
        "drop_id": row.drop_id,
    }


def count_and_log(outcomes: Sequence[Outcome]) -> None:
    """Metrics per attempt; a log line per attempt that did not simply go out (retries and
    failures as warnings), and one line for the batch. A sent row keeps its own record:
    status, sent_at and LINE's request id."""
    counts: Counter[tuple[str, str]] = Counter()
    for claim, response, outcome in outcomes:
        counts[claim.kind, outcome] += 1
        if outcome == "sent":
            continue
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
    for (kind, outcome), n in counts.items():
        metrics.DELIVERIES.labels(kind, outcome).inc(n)
    if outcomes:
        log.info(
            "deliveries_recorded",
            attempts=len(outcomes),
            outcomes={f"{kind}:{outcome}": n for (kind, outcome), n in sorted(counts.items())},
        )
