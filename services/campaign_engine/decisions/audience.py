"""A campaign's audience rules: whom its offers may go to (docs/interfaces.md § Marketer campaign API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.model.features import CustomerFeatures


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
