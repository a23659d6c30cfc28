"""A campaign's offers as they are stored and as campaign.events carry them.

Offers keep their index (it is inside issued codes) and are withdrawn, never removed, so
codes already issued for them stay verifiable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.campaign_engine.models import Campaign


def offer_scope(offer: Mapping[str, Any]) -> tuple[str, list[str]]:
    """What the offer applies to: ("skus", [...]) or ("categories", [...])."""
    applies = offer["applies_to"]
    if applies.get("skus"):
        return "skus", list(applies["skus"])
    return "categories", list(applies.get("categories") or [])


def stored_offer(offer: Mapping[str, Any], *, index: int, offer_id: str) -> dict[str, Any]:
    """An offer as the campaign keeps it: with its id and its index in issued codes."""
    kind, items = offer_scope(offer)
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


def live_offers(campaign: Campaign) -> list[dict[str, Any]]:
    """The offers a campaign can still issue (not withdrawn)."""
    return [o for o in campaign.offers if not o.get("withdrawn")]
