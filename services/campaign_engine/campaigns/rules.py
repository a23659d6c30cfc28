"""Campaign rules with no I/O: the lifecycle and what may change when
(docs/interfaces.md § Marketer campaign API).

Lifecycle: draft → active ⇄ paused → ended (terminal); an active campaign may also end.
Once a campaign has been live, its offers, budget and caps may only be tightened, and
the terms its results are measured and paid by (start, holdout, revenue share, per-call
fee) are fixed. `pacing` and `message_cost` may change at any time before the end: pacing
only sets how fast the budget may go (never how much), and the message cost follows the
retailer's messaging plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.campaign_engine.campaigns.offers import offer_scope, stored_offer

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
    new_id: Callable[[], str],
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
    old_to, new_to = offer_scope(old), offer_scope(new)
    if old_to[0] != new_to[0] or not set(new_to[1]) <= set(old_to[1]):
        out.append(Conflict(f"{at}.applies_to", f"can only narrow the {old_to[0]} it applies to"))
    return out
