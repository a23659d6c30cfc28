"""Handing a just-queued message straight to this process's delivery loop, in memory
(docs/architecture.md § Hot paths).

A handler that answers a customer who is waiting (the offers consumer: the coupon asked
for a moment ago) writes its `deliveries` row already claimed, as the loop's claim would
leave it (attempt 1, the reply or push channel, leased, a reply marked uncertain), and,
once that transaction has committed, hands the claim to the loop in memory. The loop
attempts it at once, without a claim transaction of its own, and records the outcome
exactly as for a claimed row (guarded by status and attempt).

Nothing is lost: the row is in the database from the commit on. If the process dies
before the attempt is recorded, the lease lapses and the row is claimed again like any
row whose sender died mid-call. A loop that stops hands back (releases) what it was handed
and had not attempted. Without an attached loop (the app, tests that run a loop apart)
`lease_s` is None and handlers queue plainly and kick the loop.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Unpack, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from services.chat_agent.delivery.outcomes import Claim
from services.chat_agent.delivery.queue import DELIVERY_COLUMNS, DeliveryFields, delivery_row
from services.chat_agent.models import Delivery
from shared.rows import RowWriter

# A claimed row in one statement (shared/rows.py), past the ORM's unit of work.
CLAIMED_ROWS = RowWriter(cast(Table, Delivery.__table__), (*DELIVERY_COLUMNS, "channel"))


class Handoff:
    """Claims handed by handlers to the delivery loop of the same process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: list[Claim] = []
        self._wake: threading.Event | None = None
        self.lease_s: float | None = None  # set while a loop is attached

    def attach(self, wake: threading.Event, lease_s: float) -> None:
        """A delivery loop takes handed claims from now on (it waits on `wake`)."""
        with self._lock:
            self._wake, self.lease_s = wake, lease_s

    def detach(self) -> list[Claim]:
        """The loop stops: handlers queue plainly again; returns what it was not yet given."""
        with self._lock:
            self.lease_s = None
            claims, self._claims = self._claims, []
            return claims

    def hand(self, claim: Claim) -> None:
        """Give the loop a claim whose row has committed, and wake it."""
        with self._lock:
            self._claims.append(claim)
            wake = self._wake
        if wake is not None:
            wake.set()

    def take(self) -> list[Claim]:
        """Everything handed since the last take, in order."""
        with self._lock:
            claims, self._claims = self._claims, []
            return claims


def enqueue_claimed(session: Session, lease_s: float, **fields: Unpack[DeliveryFields]) -> Claim:
    """Add a delivery to the caller's transaction already claimed for its first attempt
    (`delivery.claims.claim_due` would leave it so), and return the claim to hand over."""
    row = delivery_row(**fields)
    now: datetime = row["created_at"]
    deadline: datetime | None = row["reply_deadline"]
    fresh = bool(row["reply_token"] and deadline and now < deadline)
    channel = "reply" if fresh else "push"
    row.update(
        attempts=1,
        channel=channel,
        reply_uncertain=channel == "reply",  # as a claim: unknown once the call is made
        next_attempt_at=now + timedelta(seconds=lease_s),
    )
    CLAIMED_ROWS.write(session.connection(), [row])
    return Claim(
        delivery_id=row["delivery_id"],
        attempt=1,
        channel=channel,
        prior_uncertain=False,
        line_user_id=row["line_user_id"],
        reply_token=row["reply_token"],
        messages=row["messages"],
        retry_key=row["retry_key"],
        kind=row["kind"],
    )
