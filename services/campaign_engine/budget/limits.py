"""What a campaign may issue and what it has used: limits, usage, face values and days (no I/O).

A campaign's budget limits coupons issued, money committed (yen: the face value of every
unredeemed coupon plus the real discount of every redeemed one) and redemptions; its caps
limit coupons per customer per campaign day and in total. None means no limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.model.features import DEFAULT_TYPICAL_BASKET

BudgetName = Literal["max_coupons", "max_discount_total", "max_redemptions"]
CAMPAIGN_BUDGETS: tuple[BudgetName, ...] = ("max_coupons", "max_discount_total", "max_redemptions")
CUSTOMER_CAPS = ("per_customer_per_day", "per_customer_total")


@dataclass(frozen=True)
class Limits:
    """A campaign's budget and caps; None means no limit."""

    max_coupons: int | None
    max_redemptions: int | None = None
    max_discount_total: int | None = None
    per_customer_per_day: int | None = None
    per_customer_total: int | None = None

    @classmethod
    def of(cls, budget: Mapping[str, Any], caps: Mapping[str, Any]) -> Limits:
        """From a campaign's budget and caps dicts."""
        return cls(
            **{k: budget.get(k) for k in CAMPAIGN_BUDGETS},
            **{k: caps.get(k) for k in CUSTOMER_CAPS},
        )


@dataclass(frozen=True)
class Usage:
    """What a campaign has used, and what one customer has used of it."""

    issued: int
    money: int
    redeemed: int
    customer_day: int = 0
    customer_total: int = 0

    def refusal(self, limits: Limits, face: int) -> str | None:
        """The first limit one more coupon of `face` yen would break, or None (checked for
        every candidate of every request: written out, not looped over)."""
        if limits.max_coupons is not None and self.issued + 1 > limits.max_coupons:
            return "max_coupons"
        if limits.max_discount_total is not None and self.money + face > limits.max_discount_total:
            return "max_discount_total"
        if limits.max_redemptions is not None and self.redeemed + 1 > limits.max_redemptions:
            return "max_redemptions"
        day_cap = limits.per_customer_per_day
        if day_cap is not None and self.customer_day + 1 > day_cap:
            return "per_customer_per_day"
        total_cap = limits.per_customer_total
        if total_cap is not None and self.customer_total + 1 > total_cap:
            return "per_customer_total"
        return None


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


def campaign_day(now: datetime, utc_offset_minutes: int) -> str:
    """The calendar day (YYYYMMDD) in the campaign's time zone: the unit of daily caps."""
    return (now + timedelta(minutes=utc_offset_minutes)).strftime("%Y%m%d")


def day_start(now: datetime, utc_offset_minutes: int) -> datetime:
    """The UTC instant the campaign's current day began."""
    offset = timedelta(minutes=utc_offset_minutes)
    local = now + offset
    return local.replace(hour=0, minute=0, second=0, microsecond=0) - offset
