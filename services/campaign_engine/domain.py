"""Campaign rules with no I/O: the lifecycle, what may change when, and offer arithmetic.

Lifecycle: draft → active ⇄ paused → ended (terminal); an active campaign may also end.
Once a campaign has been live, its offers, budget and caps may only be tightened, and
the terms its results are measured and paid by (start, holdout, revenue share, per-call
fee) are fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.coupons import round_up_to_hour
from shared.model.features import DEFAULT_TYPICAL_BASKET, CustomerFeatures, OfferFeatures

TRANSITIONS: Mapping[str, Mapping[str, str]] = {
    "activate": {"draft": "active", "paused": "active"},
    "pause": {"active": "paused"},
    "end": {"active": "ended", "paused": "ended"},
}
STATUS_EVENT = {
    "active": "campaign.activated",
    "paused": "campaign.paused",
    "ended": "campaign.ended",
}
BUDGET_FIELDS = ("max_coupons", "max_redemptions", "max_discount_total")
CAP_FIELDS = ("per_customer_per_day", "per_customer_total")
# Fixed once a campaign has been live: they define how its results are measured and paid.
LOCKED_AFTER_DRAFT = ("starts_at", "holdout_pct", "revenue_share", "per_call_fee")


@dataclass(frozen=True)
class Conflict:
    """One reason a change is refused: the field it concerns and why."""

    field: str
    message: str


class CampaignConflict(Exception):
    """A lifecycle or tightening rule refused the request (HTTP 409)."""

    def __init__(self, reason: str, conflicts: Sequence[Conflict]) -> None:
        super().__init__("; ".join(f"{c.field}: {c.message}" for c in conflicts))
        self.reason = reason
        self.conflicts = list(conflicts)


def transition(status: str, action: str, *, ends_at: datetime, now: datetime) -> str:
    """The status after `action`, or CampaignConflict saying why it is not allowed."""
    target = TRANSITIONS[action].get(status)
    if target is None:
        allowed = sorted(a for a, moves in TRANSITIONS.items() if status in moves)
        raise CampaignConflict(
            "illegal_transition",
            [
                Conflict(
                    "status",
                    f"cannot {action} a campaign that is {status}"
                    + (f" (allowed: {', '.join(allowed)})" if allowed else " (it is final)"),
                )
            ],
        )
    if target == "active" and ends_at <= now:
        raise CampaignConflict(
            "campaign_window_over",
            [Conflict("ends_at", f"the campaign window ended at {ends_at.isoformat()}")],
        )
    return target


def check_update(status: str, current: Mapping[str, Any], proposed: Mapping[str, Any]) -> None:
    """Refuse a change that the campaign's status does not allow (raises CampaignConflict)."""
    if status == "ended":
        raise CampaignConflict(
            "campaign_ended", [Conflict("status", "an ended campaign cannot change")]
        )
    if status == "draft":
        return
    conflicts = [
        Conflict(name, "cannot change once the campaign has been active")
        for name in LOCKED_AFTER_DRAFT
        if proposed[name] != current[name]
    ]
    conflicts += _loosened(current["budget"], proposed["budget"], BUDGET_FIELDS, "budget")
    conflicts += _loosened(current["caps"], proposed["caps"], CAP_FIELDS, "caps")
    if conflicts:
        raise CampaignConflict("not_tightened", conflicts)


def _loosened(
    old: Mapping[str, Any], new: Mapping[str, Any], names: Sequence[str], prefix: str
) -> list[Conflict]:
    out = []
    for name in names:
        before, after = old.get(name), new.get(name)
        if before is not None and (after is None or after > before):
            out.append(
                Conflict(
                    f"{prefix}.{name}", f"can only be lowered on an active campaign (is {before})"
                )
            )
    return out


def merge_offers(
    status: str,
    current: Sequence[Mapping[str, Any]],
    proposed: Sequence[Mapping[str, Any]],
    new_id: Any,
) -> list[dict[str, Any]]:
    """The stored offers after a PATCH: replaced on a draft, tightened or withdrawn once live.

    Each proposed offer naming an `offer_id` updates that offer; a live campaign's offers
    left out are withdrawn (kept, so codes already issued for them stay verifiable).
    Raises KeyError(index) for an unknown offer_id and CampaignConflict for a loosening.
    """
    by_id = {o["offer_id"]: o for o in current}
    for i, offer in enumerate(proposed):
        if offer.get("offer_id") is not None and offer["offer_id"] not in by_id:
            raise KeyError(i)
    if status == "draft":
        return [
            stored_offer(o, index=i, offer_id=o.get("offer_id") or new_id())
            for i, o in enumerate(proposed)
        ]
    conflicts: list[Conflict] = []
    updates: dict[str, Mapping[str, Any]] = {}
    for i, offer in enumerate(proposed):
        old = by_id.get(offer.get("offer_id") or "")
        if old is None:
            conflicts.append(
                Conflict(f"offers.{i}", "offers cannot be added to an active campaign")
            )
        elif old.get("withdrawn"):
            conflicts.append(Conflict(f"offers.{i}.offer_id", "a withdrawn offer cannot return"))
        else:
            conflicts += _offer_loosened(old, offer, f"offers.{i}")
            updates[old["offer_id"]] = offer
    if conflicts:
        raise CampaignConflict("not_tightened", conflicts)
    merged = []
    for old in current:
        if old["offer_id"] in updates:
            merged.append(
                stored_offer(updates[old["offer_id"]], index=old["index"], offer_id=old["offer_id"])
            )
        else:
            merged.append({**old, "withdrawn": True})
    return merged


def _offer_loosened(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> list[Conflict]:
    out = []
    if new["discount"]["type"] != old["discount"]["type"]:
        out.append(Conflict(f"{at}.discount.type", "cannot change on an active campaign"))
    elif new["discount"]["value"] > old["discount"]["value"]:
        out.append(
            Conflict(f"{at}.discount.value", f"can only be lowered (is {old['discount']['value']})")
        )
    if new["min_basket"] < old["min_basket"]:
        out.append(Conflict(f"{at}.min_basket", f"can only be raised (is {old['min_basket']})"))
    if new["valid_hours"] > old["valid_hours"]:
        out.append(
            Conflict(f"{at}.valid_hours", f"can only be shortened (is {old['valid_hours']})")
        )
    old_to, new_to = _applies(old), _applies(new)
    if old_to[0] != new_to[0] or not set(new_to[1]) <= set(old_to[1]):
        out.append(Conflict(f"{at}.applies_to", f"can only narrow the {old_to[0]} it applies to"))
    return out


def _applies(offer: Mapping[str, Any]) -> tuple[str, list[str]]:
    applies = offer["applies_to"]
    if applies.get("skus"):
        return "skus", list(applies["skus"])
    return "categories", list(applies.get("categories") or [])


def stored_offer(offer: Mapping[str, Any], *, index: int, offer_id: str) -> dict[str, Any]:
    """An offer as the campaign keeps it: with its id and its index in issued codes."""
    kind, items = _applies(offer)
    return {
        "offer_id": offer_id,
        "index": index,
        "withdrawn": False,
        "title": offer["title"],
        "discount": {"type": offer["discount"]["type"], "value": offer["discount"]["value"]},
        "applies_to": {kind: items},
        "min_basket": offer["min_basket"],
        "valid_hours": offer["valid_hours"],
    }


def snapshot_offer(offer: Mapping[str, Any]) -> dict[str, Any]:
    """An offer as campaign.events carry it (the tracker validates codes offline from it)."""
    return {
        "offer_id": offer["offer_id"],
        "index": offer["index"],
        "title": offer["title"],
        "discount": dict(offer["discount"]),
        "applies_to": dict(offer["applies_to"]),
        "min_basket": offer["min_basket"],
        "valid_hours": offer["valid_hours"],
        "category": offer_category(offer),
    }


def offer_category(offer: Mapping[str, Any]) -> str | None:
    """The offer's first category (None for an offer on SKUs)."""
    categories = offer["applies_to"].get("categories")
    return categories[0] if categories else None


def face_value(offer: Mapping[str, Any]) -> int:
    """Yen a coupon of this offer reserves from the money budget at issue.

    Exact for amount and free-item offers; a percent offer's discount depends on the
    basket, so it reserves its percentage of the larger of its minimum basket and a
    typical basket (the redemption then settles the real amount).
    """
    kind, value = offer["discount"]["type"], int(offer["discount"]["value"])
    if kind == "percent":
        return math.ceil(value * max(offer["min_basket"], DEFAULT_TYPICAL_BASKET) / 100)
    return value


def offer_features(offer: Mapping[str, Any]) -> OfferFeatures:
    """The offer as the propensity model sees it."""
    return OfferFeatures(
        discount_type=offer["discount"]["type"],
        discount_value=float(offer["discount"]["value"]),
        category=offer_category(offer) or "other",
        min_basket=float(offer["min_basket"]),
    )


def audience_admits(
    audience: Mapping[str, Any] | None, customer: CustomerFeatures, language: str, linked: bool
) -> bool:
    """Whether the customer meets every audience rule of a campaign."""
    if not audience:
        return True
    rules = [
        audience.get("languages") is None or language in audience["languages"],
        not audience.get("linked_only") or linked or customer.linked,
        _at_most(customer.days_since_follow, audience.get("max_days_since_follow")),
        _at_least(customer.frequency_per_week, audience.get("min_visits_per_week")),
        _at_most(customer.frequency_per_week, audience.get("max_visits_per_week")),
        _at_least(customer.monetary_avg, audience.get("min_avg_basket")),
        _at_most(customer.monetary_avg, audience.get("max_avg_basket")),
        audience.get("bought_categories") is None
        or any(customer.category_share.get(c, 0.0) > 0 for c in audience["bought_categories"]),
    ]
    return all(rules)


def _at_least(value: float, bound: float | None) -> bool:
    return bound is None or value >= bound


def _at_most(value: float, bound: float | None) -> bool:
    return bound is None or value <= bound


def campaign_day(now: datetime, utc_offset_minutes: int) -> str:
    """The calendar day (YYYYMMDD) in the campaign's time zone: the unit of daily caps."""
    return (now + timedelta(minutes=utc_offset_minutes)).strftime("%Y%m%d")


def coupon_expiry(now: datetime, valid_hours: int, campaign_ends_at: datetime) -> datetime:
    """When a coupon issued now expires: after its valid hours, never past the campaign's hour."""
    return round_up_to_hour(min(now + timedelta(hours=valid_hours), campaign_ends_at))
