"""Prometheus metrics of the tracker (one set per process; gunicorn aggregates them)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TRANSACTIONS = Counter(
    "tenin_rt_transactions_total",
    "POS transactions by outcome (accepted, duplicate, rejected) and source (http, kafka).",
    ["outcome", "source"],
)
COUPONS = Counter(
    "tenin_rt_coupon_checks_total",
    "Coupons presented at tills by status (redeemed, rejected) and reason.",
    ["status", "reason"],
)
REDEMPTIONS = Counter("tenin_rt_redemptions_total", "Coupons redeemed.")
VOIDS = Counter("tenin_rt_voids_total", "Void requests by outcome.", ["outcome"])
INGEST_SECONDS = Histogram(
    "tenin_rt_ingest_seconds",
    "Time to ingest one batch of POS transactions (database commit included).",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS_APPLIED = Counter(
    "tenin_rt_events_applied_total", "Events applied to the tracker's copies.", ["type"]
)
