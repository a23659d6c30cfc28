"""Handing a just-queued message straight to this process's delivery loop, in memory
(docs/architecture.md § Hot paths).

A handler that answers a customer who is waiting (the offers consumer: the coupon asked
for a moment ago) writes its `deliveries` row already claimed, as the loop's claim would
leave it (attempt 1, the reply or push channel, leased, a reply marked uncertain), and,
once that transaction has committed, hands the claim to the loop in memory. The loop
attempts it at once, without a claim transaction of its own, and records the outcome
exactly as for a claimed row (guarded by status and attempt).

A campaign drop's push due now goes the same way (drops/pushes.py), while the loop has
room: `capacity` claims wait in memory at most (about a batch, sent in well under a second
at the channel's rate); past it, pushes are queued plainly and claimed by the loop later,
so a drop faster than the channel never piles leased rows up in memory.

Nothing is lost: the row is in the database from the commit on. If the process dies
before the attempt is recorded, the lease lapses and the row is claimed again like any
row whose sender died mid-call. A loop that stops hands back (releases) what it was handed
and had not attempted. Without an attached loop (the app, tests that run a loop apart)
`lease_s` is None and handlers queue plainly and kick the loop.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Unpack, cast

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
        self._capacity = 0
        self.lease_s: float | None = None  # set while a loop is attached

    def attach(self, wake: threading.Event, lease_s: float, capacity: int = 256) -> None:
        """A delivery loop takes handed claims from now on (it waits on `wake`); at most
        `capacity` of a drop's pushes wait for it at a time (`room`)."""
        with self._lock:
            self._wake, self.lease_s, self._capacity = wake, lease_s, capacity

    def room(self) -> int:
        """How many more claims may be handed now (0 without an attached loop)."""
        with self._lock:
            return max(0, self._capacity - len(self._claims)) if self.lease_s else 0

    def detach(self) -> list[Claim]:
        """The loop stops: handlers queue plainly again; returns what it was not yet given."""
        with self._lock:
            self.lease_s = None
            claims, self._claims = self._claims, []
            return claims

    def hand(self, *claims: Claim) -> None:
        """Give the loop claims whose rows have committed, and wake it."""
        with self._lock:
            self._claims += claims
            wake = self._wake
        if wake is not None and claims:
            wake.set()

    def take(self, limit: int | None = None) -> list[Claim]:
        """What was handed since the last take, in order: all of it, or the first `limit`
        (then the loop is woken again for the rest)."""
        with self._lock:
            cut = len(self._claims) if limit is None else max(0, limit)
            claims, self._claims = self._claims[:cut], self._claims[cut:]
            if self._claims and self._wake is not None:
                self._wake.set()
            return claims


def enqueue_claimed(session: Session, lease_s: float, **fields: Unpack[DeliveryFields]) -> Claim:
    """Add a delivery to the caller's transaction already claimed for its first attempt
    (`delivery.claims.claim_due` would leave it so), and return the claim to hand over."""
    row = delivery_row(**fields)
    claim = claim_row(row, lease_s)
    CLAIMED_ROWS.write(session.connection(), [row])
    return claim


def claim_row(row: dict[str, Any], lease_s: float) -> Claim:
    """Make a new `delivery_row` claimed for its first attempt, leased for `lease_s`, as
    `delivery.claims.claim_due` would leave it (it gains a `channel`), and return the claim
    to hand over once the row has committed."""
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
