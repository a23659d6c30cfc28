"""The append-only revenue-share ledger, and voids (which only ever add entries).

One entry per redemption (kind `redemption`), one exact negative per voided redemption
(kind `void`), and, for campaigns paid on the incremental basis, one `period_close`
entry per closed month (see periods.py). Entries are never updated or deleted; a
unique `dedupe_key` per entry makes every writer idempotent under retries and races.

A redemption entry carries the basket total as attributed revenue (only the first
redeemed coupon of a campaign on a transaction carries it, so a basket is attributed to
a campaign once), its discount, and, on the `attributed` basis, the share owed:
floor(revenue × pct). A void entry negates the original entry's figures exactly.

Statement periods are calendar months in Japan time (the retailer's books), by the time
an entry is booked: a closed month never changes afterwards, and a late void lands in
the month it was recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.redemption_tracker import metrics
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.dbutil import (
    bulk,
    insert_ignore,
    insert_rows,
    lock_rows,
    outbox_row,
)
from services.redemption_tracker.models import (
    CampaignUsage,
    LedgerEntry,
    Outbox,
    Redemption,
    Transaction,
    Void,
)
from services.redemption_tracker.schemas import VoidRequest
from shared.coupons import verify_code
from shared.db import unit_of_work
from shared.http import ProblemError

STATEMENT_TZ = ZoneInfo("Asia/Tokyo")


def period_of(moment: datetime) -> str:
    """The statement period (YYYY-MM, Japan time) a moment falls in."""
    return moment.astimezone(STATEMENT_TZ).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period, as UTC datetimes."""
    year, month = (int(x) for x in period.split("-"))
    start = datetime(year, month, 1, tzinfo=STATEMENT_TZ)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=STATEMENT_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def next_period(period: str) -> str:
    """The month after."""
    return period_of(period_bounds(period)[1])


def redemption_entry(
    *, redemption_id: int, campaign_id: str, basis: str, share_bp: int, store_id: str,
    transaction_id: str, revenue: int, discount: int, now: datetime,
) -> dict[str, Any]:
    """The ledger row of one redemption (a dict for a bulk insert)."""
    share = revenue * share_bp // 10_000 if basis == "attributed" else 0
    return {
        "dedupe_key": f"redemption:{redemption_id}", "campaign_id": campaign_id,
        "kind": "redemption", "redemption_id": redemption_id, "store_id": store_id,
        "transaction_id": transaction_id, "revenue": revenue, "discount": discount,
        "share": share, "basis": basis, "share_bp": share_bp, "period": period_of(now),
        "booked_at": now,
    }


def void_transaction(tracker: Tracker, store_id: str, req: VoidRequest) -> dict[str, Any]:
    """Void a transaction: reverse its live redemptions with new entries. Idempotent."""
    now = tracker.clock()
    with unit_of_work(tracker.sessions) as s:
        tx = s.execute(
            select(Transaction.id).where(
                Transaction.store_id == store_id, Transaction.transaction_id == req.transaction_id
            )
        ).scalar_one_or_none()
        if tx is None:
            raise ProblemError(
                404, "Unknown transaction",
                f"store {store_id} has no transaction {req.transaction_id!r}",
                errors=[{"field": "transaction_id", "message": "no such transaction"}],
            )
        first = bulk(
            s, insert_ignore(s, Void, ["tx_id"]).returning(Void.id),
            [{"tx_id": tx, "occurred_at": req.occurred_at, "reason": req.reason,
              "recorded_at": now}],
        ).first()
        reversed_rows = _reverse(s, tracker, tx, now) if first is not None else []
        if first is None:
            reversed_rows = _voided_before(s, tracker.coupon_key, tx)
    metrics.VOIDS.labels("voided" if first is not None else "already_voided").inc()
    return {
        "transaction_id": req.transaction_id,
        "status": "voided" if first is not None else "already_voided",
        "coupons": [
            {"code": r.code, "discount": r.discount, "reusable": r.expires_at > now}
            for r in reversed_rows
        ],
    }


class _Reversed:
    __slots__ = ("code", "discount", "expires_at")

    def __init__(self, code: str, discount: int, expires_at: datetime) -> None:
        self.code, self.discount, self.expires_at = code, discount, expires_at


def _expiry(key: bytes, code: str) -> datetime:
    return verify_code(key, code).expires_at


def _reverse(s: Session, tracker: Tracker, tx_id: int, now: datetime) -> list[_Reversed]:
    """Mark the transaction's live redemptions voided and book the negative entries."""
    live = s.execute(
        select(Redemption).where(Redemption.tx_id == tx_id, Redemption.voided_at.is_(None))
        .order_by(Redemption.id)
    ).scalars().all()
    if not live:
        return []
    ids = [r.id for r in live]
    s.execute(update(Redemption).where(Redemption.id.in_(ids)).values(voided_at=now))
    originals = {
        e.redemption_id: e
        for e in s.execute(
            select(LedgerEntry).where(
                LedgerEntry.redemption_id.in_(ids), LedgerEntry.kind == "redemption"
            )
        ).scalars()
    }
    entries, events = [], []
    by_campaign: dict[str, list[int]] = {}
    for r in live:
        orig = originals.get(r.id)
        entries.append({
            "dedupe_key": f"void:{r.id}", "campaign_id": r.campaign_id, "kind": "void",
            "redemption_id": r.id, "store_id": r.store_id, "transaction_id": r.transaction_id,
            "revenue": -(orig.revenue if orig else 0), "discount": -r.discount,
            "share": -(orig.share if orig else 0), "basis": orig.basis if orig else "attributed",
            "share_bp": orig.share_bp if orig else 0, "period": period_of(now), "booked_at": now,
        })
        counts = by_campaign.setdefault(r.campaign_id, [0, 0])
        counts[0] += 1
        counts[1] += r.discount
        events.append(outbox_row(
            "coupon.voided",
            {"code": r.code, "customer_id": r.customer_id, "campaign_id": r.campaign_id,
             "offer_id": r.offer_id, "transaction_id": r.transaction_id,
             "store_id": r.store_id, "discount": r.discount},
            key=r.customer_id or r.code, producer=tracker.producer,
        ))
    lock_rows(s, CampaignUsage, CampaignUsage.campaign_id, sorted(by_campaign))
    for campaign_id, (n, discount) in by_campaign.items():
        s.execute(
            update(CampaignUsage).where(CampaignUsage.campaign_id == campaign_id).values(
                redemptions=CampaignUsage.redemptions - n,
                discount_total=CampaignUsage.discount_total - discount,
            )
        )
    insert_rows(s, LedgerEntry, entries)
    insert_rows(s, Outbox, events)
    return [_Reversed(r.code, r.discount, _expiry(tracker.coupon_key, r.code)) for r in live]


def _voided_before(s: Session, key: bytes, tx_id: int) -> list[_Reversed]:
    rows = s.execute(
        select(Redemption).where(Redemption.tx_id == tx_id, Redemption.voided_at.is_not(None))
        .order_by(Redemption.id)
    ).scalars().all()
    return [_Reversed(r.code, r.discount, _expiry(key, r.code)) for r in rows]


# --- sums -------------------------------------------------------------------------------


def totals_by_period(s: Session, campaign_id: str) -> dict[str, dict[str, int]]:
    """Ledger sums per period: revenue, discount, share (and entry counts)."""
    rows = s.execute(
        select(
            LedgerEntry.period, LedgerEntry.kind, func.count(), func.sum(LedgerEntry.revenue),
            func.sum(LedgerEntry.discount), func.sum(LedgerEntry.share),
        ).where(LedgerEntry.campaign_id == campaign_id)
        .group_by(LedgerEntry.period, LedgerEntry.kind)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for period, kind, n, revenue, discount, share in rows:
        t = out.setdefault(period, {"attributed_revenue": 0, "discount_cost": 0,
                                    "revenue_share": 0, "closes": 0, "close_share": 0})
        t["attributed_revenue"] += int(revenue or 0)
        t["discount_cost"] += int(discount or 0)
        t["revenue_share"] += int(share or 0)
        if kind == "period_close":
            t["closes"] += int(n)
            t["close_share"] += int(share or 0)
    return out


def statement_lines(s: Session, campaign_id: str, period: str) -> list[dict[str, Any]]:
    """One line per (day, kind) of the period's entries, summed from the ledger."""
    entries = s.execute(
        select(LedgerEntry.booked_at, LedgerEntry.kind, LedgerEntry.revenue,
               LedgerEntry.discount, LedgerEntry.share)
        .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.period == period)
    ).all()
    lines: dict[tuple[str | None, str], dict[str, Any]] = {}
    for booked_at, kind, revenue, discount, share in entries:
        day = None if kind == "period_close" else booked_at.astimezone(STATEMENT_TZ).date().isoformat()
        line = lines.setdefault((day, kind), {
            "date": day, "kind": kind, "entries": 0, "attributed_revenue": 0,
            "discount_cost": 0, "revenue_share": 0,
        })
        line["entries"] += 1
        line["attributed_revenue"] += int(revenue)
        line["discount_cost"] += int(discount)
        line["revenue_share"] += int(share)
    return sorted(lines.values(), key=lambda x: (x["date"] or "9999", x["kind"]))
