"""Coupon checks that need no database: signature, validity, basket, campaign state, store.

Order (the first failing check gives the reason):

1. signature — `unknown_code` (not a code, bad check character) or `forged` (signature
   does not match); no database is touched for either; then `late_report` when the
   transaction is dated further back than the allowed lateness (till_time.py; checked in
   pos/redeem.py, since it needs the time the report arrived) — and, after the other
   checks, for a late sale of a code the tracker already refused as `expired`
   (pos/backdating.py);
2. `expired` — the sale happened at or after the expiry the code itself carries;
3. `campaign_not_active` when the tracker has no copy of the code's campaign, and
   `unknown_code` when the campaign has no offer with the code's index;
4. `not_yet_valid` — the sale happened before the campaign starts, or before the
   decision's `valid_from` when the decision is known;
5. `min_basket_not_met` — the basket total is below the coupon's minimum, or the basket
   holds nothing the offer applies to;
6. `campaign_not_active` — the campaign is not `active` now, or the sale happened at
   or after its end;
7. `wrong_store` — the offer names the stores it is valid in (an optional `stores`
   list in the offer) and this till's store is not one of them.

Then the database decides, in ingest: `already_redeemed` (one live redemption per
code, a unique index) and `redemption_budget_exhausted` (the campaign's
`max_redemptions` / `max_discount_total`, under a row lock).

A genuine code whose `offer.decided` has not reached the tracker yet is checked
against the code's own claims and the campaign copy (offer terms, campaign start):
it is never rejected for the missing decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.coupons import CodeRejected, CouponClaims, verify_canonical

REASONS = (
    "unknown_code",
    "forged",
    "expired",
    "not_yet_valid",
    "already_redeemed",
    "min_basket_not_met",
    "campaign_not_active",
    "redemption_budget_exhausted",
    "wrong_store",
    "late_report",
)


@dataclass(frozen=True)
class OfferTerms:
    offer_id: str
    index: int
    title: str
    discount_type: str
    discount_value: int
    skus: frozenset[str] | None
    categories: frozenset[str] | None
    min_basket: int
    stores: frozenset[str] | None

    def public(self) -> dict[str, Any]:
        """What the pre-check shows a till."""
        applies: dict[str, list[str]] = {}
        if self.skus is not None:
            applies["skus"] = sorted(self.skus)
        if self.categories is not None:
            applies["categories"] = sorted(self.categories)
        return {
            "offer_id": self.offer_id,
            "title": self.title,
            "discount": {"type": self.discount_type, "value": self.discount_value},
            "applies_to": applies,
            "min_basket": self.min_basket,
        }


@dataclass(frozen=True)
class CampaignTerms:
    campaign_id: str
    number: int
    status: str
    starts_at: datetime
    ends_at: datetime
    offers: Mapping[int, OfferTerms]
    max_redemptions: int | None
    max_discount_total: int | None
    share_basis: str
    share_bp: int


@dataclass(frozen=True)
class DecisionTerms:
    customer_id: str
    valid_from: datetime | None
    min_basket: int | None
    discount_type: str | None
    discount_value: int | None


@dataclass(frozen=True)
class Line:
    sku: str
    category: str | None
    qty: int
    unit_price: int


@dataclass(frozen=True)
class Basket:
    store_id: str
    occurred_at: datetime
    total: int
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Presented:
    """A code as presented at the till, after the signature check."""

    raw: str
    code: str | None  # canonical form, when the code parses
    claims: CouponClaims | None
    reason: str | None  # unknown_code | forged


@dataclass(frozen=True)
class Verdict:
    reason: str | None
    discount: int = 0
    campaign_id: str | None = None
    offer: OfferTerms | None = None
    customer_id: str | None = None


def read_code(key: bytes | Sequence[bytes], raw: str) -> Presented:
    """Check a presented code's form and signature, offline (any key of a rotation may have signed)."""
    try:
        code, claims = verify_canonical(key, raw)
    except CodeRejected as exc:
        return Presented(raw, None, None, exc.reason)
    return Presented(raw, code, claims, None)


def _opt_set(values: Any) -> frozenset[str] | None:
    if not values:
        return None
    return frozenset(str(v) for v in values)


def offer_terms(offer: Mapping[str, Any], fallback_index: int) -> OfferTerms:
    """An offer dict of a campaign snapshot as typed terms."""
    discount = offer.get("discount") or {}
    applies = offer.get("applies_to") or {}
    return OfferTerms(
        offer_id=str(offer.get("offer_id") or f"offer-{fallback_index}"),
        index=int(offer.get("index", fallback_index)),
        title=str(offer.get("title", "")),
        discount_type=str(discount.get("type", "amount")),
        discount_value=int(discount.get("value", 0)),
        skus=_opt_set(applies.get("skus")),
        categories=_opt_set(applies.get("categories")),
        min_basket=int(offer.get("min_basket") or 0),
        stores=_opt_set(offer.get("stores")),
    )


def campaign_terms(
    *,
    campaign_id: str,
    number: int,
    status: str,
    starts_at: datetime,
    ends_at: datetime,
    offers: Iterable[Mapping[str, Any]],
    budget: Mapping[str, Any],
    share_basis: str,
    share_bp: int,
) -> CampaignTerms:
    """Typed terms from the tracker's campaign copy."""
    terms = [offer_terms(o, i) for i, o in enumerate(offers)]

    def limit(name: str) -> int | None:
        value = budget.get(name)
        return None if value is None else int(value)

    return CampaignTerms(
        campaign_id=campaign_id,
        number=number,
        status=status,
        starts_at=starts_at,
        ends_at=ends_at,
        offers={t.index: t for t in terms},
        max_redemptions=limit("max_redemptions"),
        max_discount_total=limit("max_discount_total"),
        share_basis=share_basis,
        share_bp=share_bp,
    )


def eligible_lines(offer: OfferTerms, basket: Basket) -> list[Line] | None:
    """Basket lines the offer applies to; None when it applies to the whole basket."""
    if offer.skus is None and offer.categories is None:
        return None
    return [
        line
        for line in basket.lines
        if (offer.skus is not None and line.sku in offer.skus)
        or (offer.categories is not None and line.category in offer.categories)
    ]


def compute_discount(discount_type: str, value: int, offer: OfferTerms, basket: Basket) -> int:
    """The yen off: amount (capped at what it applies to), percent (floored), free_item.

    free_item: the cheapest eligible unit is free, capped at `value` yen when value > 0.
    """
    lines = eligible_lines(offer, basket)
    subtotal = basket.total if lines is None else sum(x.qty * x.unit_price for x in lines)
    subtotal = min(subtotal, basket.total)
    if discount_type == "percent":
        return subtotal * min(max(value, 0), 100) // 100
    if discount_type == "free_item":
        prices = [x.unit_price for x in (lines if lines is not None else basket.lines)]
        cheapest = min(prices) if prices else 0
        return min(cheapest, value) if value > 0 else cheapest
    return min(max(value, 0), subtotal)


def check_coupon(
    claims: CouponClaims,
    campaign: CampaignTerms | None,
    decision: DecisionTerms | None,
    basket: Basket,
    *,
    check_basket: bool = True,
) -> Verdict:
    """Checks 2–7 of the module docstring for a genuine code.

    `check_basket=False` (the till's pre-check, before there is a basket) skips check 5
    and the discount.
    """
    customer_id = decision.customer_id if decision is not None else None
    if basket.occurred_at >= claims.expires_at:
        return Verdict(
            "expired",
            customer_id=customer_id,
            campaign_id=campaign.campaign_id if campaign else None,
        )
    if campaign is None:
        return Verdict("campaign_not_active", customer_id=customer_id)
    offer = campaign.offers.get(claims.offer_index)
    if offer is None:
        return Verdict("unknown_code", campaign_id=campaign.campaign_id, customer_id=customer_id)

    def reject(reason: str) -> Verdict:
        return Verdict(
            reason, campaign_id=campaign.campaign_id, offer=offer, customer_id=customer_id
        )

    valid_from = decision.valid_from if decision is not None else None
    if basket.occurred_at < campaign.starts_at or (
        valid_from is not None and basket.occurred_at < valid_from
    ):
        return reject("not_yet_valid")
    min_basket = offer.min_basket
    if decision is not None and decision.min_basket is not None:
        min_basket = decision.min_basket
    lines = eligible_lines(offer, basket)
    if check_basket and (basket.total < min_basket or (lines is not None and not lines)):
        return reject("min_basket_not_met")
    if campaign.status != "active" or basket.occurred_at >= campaign.ends_at:
        return reject("campaign_not_active")
    if offer.stores is not None and basket.store_id not in offer.stores:
        return reject("wrong_store")
    d_type, d_value = offer.discount_type, offer.discount_value
    if decision is not None and decision.discount_type is not None:
        d_type, d_value = decision.discount_type, decision.discount_value or 0
    discount = compute_discount(d_type, d_value, offer, basket) if check_basket else 0
    return Verdict(None, discount, campaign.campaign_id, offer, customer_id)
