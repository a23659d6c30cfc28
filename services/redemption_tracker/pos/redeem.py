"""Settling a batch's coupons: checks, claims, budgets, then what they leave behind.

Steps 2–5 of pos/ingest.py's docstring, inside the batch's database transaction:
`settle_coupons` runs the offline checks, claims the surviving codes on the live-code
unique index and admits them within the campaign budgets (`apply_budgets`, under the
counter rows' locks); `write_outcomes` writes the coupon checks, the ledger entries and
the outbox events in bulk (rejections aggregated per batch, pos/events.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.ledger import redemption_entry
from services.redemption_tracker.models import (
    CampaignUsage,
    CouponCheck,
    LedgerEntry,
    Outbox,
    Redemption,
)
from services.redemption_tracker.pos.backdating import refuse_backdated, remember_expired
from services.redemption_tracker.pos.batch import BatchCopies, BatchTx, Outcome
from services.redemption_tracker.pos.checks import Basket, Line, check_coupon
from services.redemption_tracker.pos.events import (
    RejectionKey,
    coupon_redeemed,
    coupon_rejections,
    rejection_key,
    sale_recorded,
)
from services.redemption_tracker.sql import insert_rows, table_of
from services.redemption_tracker.till_time import TillTime
from shared.outbox import Draft, outbox_rows


def settle_coupons(
    s: Session,
    new: list[BatchTx],
    copies: BatchCopies,
    store_id: str,
    now: datetime,
    till_time: TillTime,
) -> None:
    """Checks, claims and budgets: fills each transaction's coupon outcomes."""
    candidates: list[tuple[BatchTx, Outcome]] = []
    taken: set[str] = set()
    for t in new:
        if not t.presented:
            continue
        too_late = till_time.too_late(t.tx.occurred_at, now)
        basket = Basket(
            store_id,
            t.tx.occurred_at,
            t.tx.total,
            tuple(Line(i.sku, i.category, i.qty, i.unit_price) for i in t.tx.items),
        )
        used = 0
        for p in t.presented:
            o = Outcome(p.raw, code=p.code, reason=p.reason)
            t.outcomes.append(o)
            if p.claims is None:
                continue
            if too_late:
                # Checked before expiry: a till's clock is trusted only this far back.
                known = copies.campaigns.get(p.claims.campaign_no)
                o.reason, o.campaign_id = "late_report", known.campaign_id if known else None
                continue
            verdict = check_coupon(
                p.claims,
                copies.campaigns.get(p.claims.campaign_no),
                copies.decisions.get(p.code or ""),
                basket,
            )
            o.campaign = copies.campaigns.get(p.claims.campaign_no)
            o.campaign_id = verdict.campaign_id
            o.offer_id = verdict.offer.offer_id if verdict.offer else None
            o.customer_id = verdict.customer_id or copies.links.get(t.member_hash or "")
            if verdict.reason is None and p.code in taken:
                o.reason = "already_redeemed"  # the same code twice in one batch
            elif verdict.reason is not None:
                o.reason = verdict.reason
            else:
                assert p.code is not None
                taken.add(p.code)
                # Several coupons on one basket never take off more than the basket.
                o.discount = min(verdict.discount, max(t.tx.total - used, 0))
                used += o.discount
                candidates.append((t, o))
    expired = {o.code for t in new for o in t.outcomes if o.reason == "expired" and o.code}
    if expired:
        remember_expired(s, expired, now)
    candidates = refuse_backdated(s, candidates, expired, till_time, now)
    if not candidates:
        return
    claims = sorted(candidates, key=lambda c: c[1].code or "")
    won = dict(
        insert_rows(
            s,
            Redemption,
            [
                {
                    "tx_id": t.row_id,
                    "code": o.code,
                    "campaign_id": o.campaign_id,
                    "offer_id": o.offer_id,
                    "customer_id": o.customer_id,
                    "store_id": store_id,
                    "transaction_id": t.tx.transaction_id,
                    "discount": o.discount,
                    "basket_total": t.tx.total,
                    "occurred_at": t.tx.occurred_at,
                    "redeemed_at": now,
                    "late": till_time.late(t.tx.occurred_at, now),
                    "voided_at": None,
                }
                for t, o in claims
            ],
            conflict=("code",),
            where="voided_at IS NULL",
            returning=("code", "id"),
        )
    )
    held = []
    for t, o in candidates:
        if o.code in won:
            o.redemption_id = won[o.code]
            held.append((t, o))
        else:
            o.reason, o.discount = "already_redeemed", 0
    apply_budgets(s, held)


def _lock_usage(s: Session, ids: list[str]) -> dict[str, list[int]]:
    """The campaigns' counters [redemptions, discount total], locked in campaign id order.

    Core, not `lock_rows`' ORM entities: the counters are only read and written back here.
    """
    t = table_of(CampaignUsage)
    stmt = (
        select(t.c.campaign_id, t.c.redemptions, t.c.discount_total)
        .where(t.c.campaign_id.in_(ids))
        .order_by(t.c.campaign_id)
        .with_for_update()
    )
    return {cid: [n, spent] for cid, n, spent in s.connection().execute(stmt)}


def apply_budgets(s: Session, held: list[tuple[BatchTx, Outcome]]) -> None:
    """Admit claims within each campaign's redemption budget, under the counter's row lock."""
    if not held:
        return
    ids = sorted({o.campaign.campaign_id for _, o in held if o.campaign is not None})
    counts = _lock_usage(s, ids)
    if len(counts) < len(ids):
        # Counter rows come with the campaign copy; create a missing one race-free.
        missing = [{"campaign_id": c, "redemptions": 0, "discount_total": 0} for c in ids]
        insert_rows(s, CampaignUsage, missing, conflict=("campaign_id",))
        counts = _lock_usage(s, ids)
    over: list[int] = []
    for _, o in held:
        assert o.campaign is not None and o.redemption_id is not None
        n, spent = counts.setdefault(o.campaign.campaign_id, [0, 0])
        limit_n, limit_d = o.campaign.max_redemptions, o.campaign.max_discount_total
        if (limit_n is not None and n + 1 > limit_n) or (
            limit_d is not None and spent + o.discount > limit_d
        ):
            over.append(o.redemption_id)
            o.reason, o.discount, o.redemption_id = "redemption_budget_exhausted", 0, None
            continue
        counts[o.campaign.campaign_id] = [n + 1, spent + o.discount]
        o.status = "redeemed"
    if over:
        s.execute(delete(Redemption).where(Redemption.id.in_(over)))
    t = table_of(CampaignUsage)
    s.connection().execute(
        update(t)
        .where(t.c.campaign_id == bindparam("cid"))
        .values(redemptions=bindparam("n"), discount_total=bindparam("spent")),
        [{"cid": cid, "n": n, "spent": spent} for cid, (n, spent) in counts.items()],
    )


def write_outcomes(
    s: Session,
    tracker: Tracker,
    new: list[BatchTx],
    copies: BatchCopies,
    store_id: str,
    now: datetime,
) -> None:
    """Coupon checks, ledger entries and outbox events of the new transactions."""
    checks: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    drafts: list[Draft] = []
    rejected: dict[RejectionKey, list[tuple[BatchTx, Outcome]]] = {}
    links = copies.links
    for t in new:
        attributed: set[str] = set()
        for position, o in enumerate(t.outcomes):
            checks.append(
                {
                    "tx_id": t.row_id,
                    "position": position,
                    "code": o.raw,
                    "status": o.status,
                    "reason": o.reason,
                    "discount": o.discount,
                    "campaign_id": o.campaign_id,
                }
            )
            if o.status != "redeemed":
                rejected.setdefault(rejection_key(o), []).append((t, o))
            else:
                drafts.append(coupon_redeemed(t, o, store_id))
                assert o.campaign is not None and o.redemption_id is not None
                revenue = 0 if o.campaign.campaign_id in attributed else t.tx.total
                attributed.add(o.campaign.campaign_id)
                entries.append(
                    redemption_entry(
                        redemption_id=o.redemption_id,
                        campaign_id=o.campaign.campaign_id,
                        basis=o.campaign.share_basis,
                        share_bp=o.campaign.share_bp,
                        store_id=store_id,
                        transaction_id=t.tx.transaction_id,
                        revenue=revenue,
                        discount=o.discount,
                        now=now,
                    )
                )
        customer = links.get(t.member_hash) if t.member_hash is not None else None
        if customer is not None:
            drafts.append(sale_recorded(t, customer, store_id))
    drafts += coupon_rejections(rejected.values(), store_id)
    insert_rows(s, CouponCheck, checks)
    insert_rows(s, LedgerEntry, entries)
    insert_rows(s, Outbox, outbox_rows(drafts, tracker.producer))
