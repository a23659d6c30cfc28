"""Prometheus metrics of campaign_engine (decisions, coupons, campaign API)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DECISIONS = Counter(
    "tenin_engine_decisions_total",
    "Offer decisions committed, by arm and (for no coupon) reason.",
    ["arm", "reason"],
)
COUPONS_ISSUED = Counter(
    "tenin_engine_coupons_issued_total", "Signed coupon codes issued (decision committed)."
)
RESERVATIONS_RELEASED = Counter(
    "tenin_engine_reservations_released_total",
    "Budget and cap reservations given back because their decision did not commit.",
)
DECISION_SECONDS = Histogram(
    "tenin_engine_decision_seconds",
    "Time from taking an offer request to committing its decision and outbox event.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
UPDATES = Counter(
    "tenin_engine_updates_total",
    "Customer, sales and coupon events applied to features and budget usage, by type.",
    ["type", "outcome"],
)
CAMPAIGN_CHANGES = Counter(
    "tenin_engine_campaign_changes_total", "Campaign API changes by action.", ["action"]
)
