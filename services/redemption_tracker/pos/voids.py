"""Voids: a voided transaction's redemptions are reversed by new ledger entries.

Only within the void window and never into a closed statement period (pos/void_window.py).

The void is recorded once (`voids.tx_id` is unique, so a re-sent or concurrent void
finds it and answers `already_voided`); in the same transaction each live redemption of
the transaction gets `voided_at` — which takes it out of the live-code unique index, so
the code can be redeemed again while it is valid — and an exact negative of its ledger
entry, the campaign counters go down, and `coupon.voided` is written to the outbox. The
voided transaction's spend no longer counts in lift.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.redemption_tracker import metrics
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.ledger import period_of
from services.redemption_tracker.models import (
    CampaignUsage,
    LedgerEntry,
    Outbox,
    Redemption,
    Transaction,
    Void,
)
from services.redemption_tracker.pos.events import coupon_voided
from services.redemption_tracker.pos.schemas import VoidRequest
from services.redemption_tracker.pos.void_window import check_open_periods, check_void_time
from services.redemption_tracker.sql import bulk, insert_ignore, insert_rows, lock_rows
from shared.coupons import claims_of
from shared.db import unit_of_work
from shared.http import field_problem
from shared.outbox import Draft, outbox_rows


def void_transaction(tracker: Tracker, store_id: str, req: VoidRequest) -> dict[str, Any]:
    """Void a transaction: reverse its live redemptions with new entries. Idempotent."""
    now = tracker.clock()
    with unit_of_work(tracker.sessions) as s:
        found = s.execute(
            select(Transaction.id, Transaction.occurred_at, Transaction.received_at).where(
                Transaction.store_id == store_id, Transaction.transaction_id == req.transaction_id
            )
        ).one_or_none()
        if found is None:
            raise field_problem(
                404,
                "Unknown transaction",
                f"store {store_id} has no transaction {req.transaction_id!r}",
                field="transaction_id",
                message="no such transaction",
            )
        tx = found.id
        if s.execute(select(Void.id).where(Void.tx_id == tx)).first() is None:
            check_void_time(
                tracker.till_time,
                void_at=req.occurred_at,
                tx_occurred_at=found.occurred_at,
                tx_received_at=found.received_at,
                now=now,
            )
        first = bulk(
            s,
            insert_ignore(s, Void, ["tx_id"]).returning(Void.id),
            [
                {
                    "tx_id": tx,
                    "occurred_at": req.occurred_at,
                    "reason": req.reason,
                    "recorded_at": now,
                }
            ],
        ).first()
        if first is not None:
            reversed_rows = _reverse(s, tracker, tx, now)
        else:
            reversed_rows = _voided_before(s, tx)
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


def _expiry(code: str) -> datetime:
    """A stored code's expiry. It was verified on arrival, so its signature is not checked
    again: a code signed under a since-rotated key must stay voidable (it gave a 500)."""
    return claims_of(code).expires_at


def _reverse(s: Session, tracker: Tracker, tx_id: int, now: datetime) -> list[_Reversed]:
    """Mark the transaction's live redemptions voided and book the negative entries."""
    live = _redemptions(s, tx_id, voided=False)
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
    check_open_periods((e.period for e in originals.values()), now)
    entries: list[dict[str, Any]] = []
    events: list[Draft] = []
    by_campaign: dict[str, list[int]] = {}
    for r in live:
        orig = originals.get(r.id)
        entries.append(
            {
                "dedupe_key": f"void:{r.id}",
                "campaign_id": r.campaign_id,
                "kind": "void",
                "redemption_id": r.id,
                "store_id": r.store_id,
                "transaction_id": r.transaction_id,
                "revenue": -(orig.revenue if orig else 0),
                "discount": -r.discount,
                "share": -(orig.share if orig else 0),
                "basis": orig.basis if orig else "attributed",
                "share_bp": orig.share_bp if orig else 0,
                "period": period_of(now),
                "booked_at": now,
            }
        )
        counts = by_campaign.setdefault(r.campaign_id, [0, 0])
        counts[0] += 1
        counts[1] += r.discount
        events.append(coupon_voided(r))
    lock_rows(s, CampaignUsage, CampaignUsage.campaign_id, sorted(by_campaign))
    for campaign_id, (n, discount) in by_campaign.items():
        s.execute(
            update(CampaignUsage)
            .where(CampaignUsage.campaign_id == campaign_id)
            .values(
                redemptions=CampaignUsage.redemptions - n,
                discount_total=CampaignUsage.discount_total - discount,
            )
        )
    insert_rows(s, LedgerEntry, entries)
    insert_rows(s, Outbox, outbox_rows(events, tracker.producer))
    return [_Reversed(r.code, r.discount, _expiry(r.code)) for r in live]


def _voided_before(s: Session, tx_id: int) -> list[_Reversed]:
    rows = _redemptions(s, tx_id, voided=True)
    return [_Reversed(r.code, r.discount, _expiry(r.code)) for r in rows]


def _redemptions(s: Session, tx_id: int, *, voided: bool) -> list[Redemption]:
    """The transaction's redemptions, voided or live, in the order they were made."""
    state = Redemption.voided_at.is_not(None) if voided else Redemption.voided_at.is_(None)
    stmt = select(Redemption).where(Redemption.tx_id == tx_id, state).order_by(Redemption.id)
    return list(s.execute(stmt).scalars())
