"""A batch in flight: its transactions, their coupon outcomes, and what it loads.

`load_copies` reads, in three queries for the whole batch, what the coupon checks need
from the tracker's copies (campaign terms by number, decision terms by code, customer
links by member hash); the pre-check reads the same terms one code at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.redemption_tracker.models import Campaign, CustomerLink, Decision
from services.redemption_tracker.pos.checks import (
    CampaignTerms,
    DecisionTerms,
    Presented,
    campaign_terms,
)
from services.redemption_tracker.pos.schemas import PosTransaction
from services.redemption_tracker.sql import RawJSON, any_of


@dataclass
class Outcome:
    """One presented coupon: rejected until the checks, the claim and the budget pass."""

    raw: str
    status: str = "rejected"
    reason: str | None = None
    discount: int = 0
    code: str | None = None
    campaign: CampaignTerms | None = None
    campaign_id: str | None = None
    offer_id: str | None = None
    customer_id: str | None = None
    redemption_id: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "code": self.raw,
            "status": self.status,
            "reason": self.reason,
            "discount": self.discount,
        }


@dataclass
class BatchTx:
    """One transaction of a batch, prepared (member hashed, codes read) for writing."""

    index: int
    tx: PosTransaction
    member_hash: str | None
    fingerprint: str
    presented: list[Presented]
    items: RawJSON
    row_id: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class BatchCopies:
    """What a batch needs from the tracker's copies."""

    campaigns: dict[int, CampaignTerms] = field(default_factory=dict)  # by campaign number
    decisions: dict[str, DecisionTerms] = field(default_factory=dict)  # by canonical code
    links: dict[str, str] = field(default_factory=dict)  # member hash → customer_id


def terms_of(row: Campaign) -> CampaignTerms:
    """A campaign copy as typed terms."""
    return campaign_terms(
        campaign_id=row.campaign_id,
        number=row.number,
        status=row.status,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        offers=row.offers,
        budget=row.budget,
        share_basis=row.share_basis,
        share_bp=row.share_bp,
    )


def decision_terms(row: Decision) -> DecisionTerms:
    """A decision copy as the terms its coupon was issued on."""
    discount: dict[str, Any] = row.discount or {}
    return DecisionTerms(
        customer_id=row.customer_id,
        valid_from=row.valid_from,
        min_basket=row.min_basket,
        discount_type=discount.get("type"),
        discount_value=int(discount["value"]) if "value" in discount else None,
    )


def load_campaign_by_number(s: Session, numbers: set[int]) -> dict[int, CampaignTerms]:
    """Campaign terms by the number coupon codes carry."""
    if not numbers:
        return {}
    rows = s.execute(select(Campaign).where(Campaign.number.in_(sorted(numbers)))).scalars()
    return {row.number: terms_of(row) for row in rows}


def load_decisions(s: Session, codes: set[str]) -> dict[str, DecisionTerms]:
    """Decision terms by coupon code (absent when the decision has not arrived yet)."""
    if not codes:
        return {}
    rows = s.execute(select(Decision).where(any_of(s, Decision.code, sorted(codes)))).scalars()
    return {row.code: decision_terms(row) for row in rows if row.code}


def load_copies(s: Session, txs: Sequence[BatchTx]) -> BatchCopies:
    """Three queries for the whole batch, never one per transaction."""
    numbers = {p.claims.campaign_no for t in txs for p in t.presented if p.claims}
    codes = {p.code for t in txs for p in t.presented if p.claims and p.code}
    hashes = sorted({t.member_hash for t in txs if t.member_hash})
    links: dict[str, str] = {}
    if hashes:
        links = dict(
            s.execute(
                select(CustomerLink.member_hash, CustomerLink.customer_id).where(
                    any_of(s, CustomerLink.member_hash, hashes)
                )
            ).all()
        )
    return BatchCopies(load_campaign_by_number(s, numbers), load_decisions(s, codes), links)
