"""What the tracker has itself seen beats a till's late claim about the past.

A till's `occurred_at` is trusted back to the allowed lateness (till_time.py), because
an offline till reports late. But once the tracker has refused a code as `expired`, it
has seen with its own clock that the code's time was over; a sale of that code reported
later still (`late`: after the clock skew), dated back to before the expiry, is a claim
about the past that the tracker's own record contradicts, and is refused `late_report`
(docs/architecture.md § Invariants). This closes the replay "refused as expired, sent
again dated yesterday", on the hot path's terms: one small insert per batch that refused
an expired code, one lookup per batch that carries late coupons, none otherwise.

Lock order within the batch: the refused codes are written, sorted, before the claims on
`redemptions` (pos/redeem.py), so concurrent batches take their locks in the same order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.redemption_tracker.models import ExpiredCode
from services.redemption_tracker.pos.batch import BatchTx, Outcome
from services.redemption_tracker.sql import insert_rows
from services.redemption_tracker.till_time import TillTime
from shared.rows import any_of


def remember_expired(s: Session, codes: set[str], now: datetime) -> None:
    """Record the codes this batch refused as `expired` (the first refusal stays)."""
    rows = [{"code": code, "refused_at": now} for code in sorted(codes)]
    insert_rows(s, ExpiredCode, rows, conflict=("code",))


def refuse_backdated(
    s: Session,
    candidates: list[tuple[BatchTx, Outcome]],
    expired_here: set[str],
    till_time: TillTime,
    now: datetime,
) -> list[tuple[BatchTx, Outcome]]:
    """The candidates left once late sales of codes already refused as expired are refused."""
    late = {o.code for t, o in candidates if o.code and till_time.late(t.tx.occurred_at, now)}
    if not late:
        return candidates
    seen = late & expired_here
    if late - seen:
        seen |= set(
            s.execute(
                select(ExpiredCode.code).where(any_of(s, ExpiredCode.code, sorted(late - seen)))
            ).scalars()
        )
    if not seen:
        return candidates
    kept = []
    for t, o in candidates:
        if o.code in seen and till_time.late(t.tx.occurred_at, now):
            o.reason, o.discount = "late_report", 0
        else:
            kept.append((t, o))
    return kept
