"""When a void is allowed (docs/interfaces.md § POS feed, docs/architecture.md § Invariants).

A void reverses redemptions with new ledger entries booked now, so without bounds a
store could void a sale from months ago: the reversal would cut the current period's
revenue share for a sale in a statement already closed, and make the coupon usable
again. A void is refused (a problem+json naming the field) when:

- its `occurred_at` is before the transaction's own `occurred_at`, or further in the
  future than the till clock skew (till_time.py) — 422, `occurred_at`;
- the transaction reached the tracker longer ago than the void window
  (TENIN_VOID_WINDOW_DAYS, default 30) — 409, `transaction_id`;
- one of its live redemptions was booked in a statement period that has closed (a
  month that has ended, in the ledger's Japan time) — 409, `transaction_id`.

A void already recorded is answered `already_voided` before these checks: a re-sent
void stays idempotent after its window closes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.redemption_tracker.ledger import period_of
from services.redemption_tracker.till_time import TillTime
from shared.http import ProblemError, field_problem


def _refused(status: int, title: str, detail: str, field: str, message: str) -> ProblemError:
    return field_problem(status, title, detail, field=field, message=message)


def check_void_time(
    till_time: TillTime,
    *,
    void_at: datetime,
    tx_occurred_at: datetime,
    tx_received_at: datetime,
    now: datetime,
) -> None:
    """Raise a problem unless the void's time and the transaction's age allow it."""
    if void_at < tx_occurred_at:
        raise _refused(
            422,
            "Void before its sale",
            f"the void's occurred_at {void_at.isoformat()} is before the transaction's "
            f"{tx_occurred_at.isoformat()}",
            "occurred_at",
            "is before the transaction it voids",
        )
    if till_time.ahead(void_at, now):
        raise _refused(
            422,
            "Void dated in the future",
            f"occurred_at is more than {int(till_time.clock_skew.total_seconds())} s ahead "
            "of the tracker's clock",
            "occurred_at",
            "is in the future by more than the allowed clock skew",
        )
    if tx_received_at < now - till_time.void_window:
        raise _refused(
            409,
            "Void window closed",
            f"a transaction can be voided for {till_time.void_window.days} days after it "
            "was recorded",
            "transaction_id",
            "is older than the void window",
        )


def check_open_periods(booked_periods: Iterable[str], now: datetime) -> None:
    """Raise a problem when a redemption to reverse was booked in a closed period."""
    current = period_of(now)
    closed = sorted({p for p in booked_periods if p < current})
    if closed:
        raise _refused(
            409,
            "Statement period closed",
            f"the transaction's redemptions are in the closed statement period {closed[0]}; "
            "a void never changes a closed period",
            "transaction_id",
            "its redemptions are in a closed statement period",
        )
