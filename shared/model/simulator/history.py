"""Past behaviour of the population, turned into what tenin would have recorded about it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from shared.model.features import (
    HOUR_BANDS,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    features_from_aggregates,
    hour_band,
)
from shared.model.simulator.catalog import ITEMS, SIM_CATEGORIES
from shared.model.simulator.population import Population
from shared.model.simulator.truth import daily_visit_rate, p_redeem_many

# Mean item price per category: how many items (and so categories) a basket holds.
_MEAN_ITEM_PRICE = np.mean([item.price for items in ITEMS.values() for item in items])
# A plain offer mix in a neutral context: what earlier campaigns' coupons looked like.
_REFERENCE_CONTEXT = DecisionContext(local_hour=12, weekday=2, intent="other", sentiment=0.0)
_REFERENCE_OFFERS = (
    OfferFeatures("amount", 50, "onigiri"),
    OfferFeatures("percent", 20, "drinks"),
    OfferFeatures("amount", 100, "bento", 500),
)


@dataclass(frozen=True)
class PastSales:
    """Purchases of linked customers before the population's start, one entry per sale."""

    customer_index: np.ndarray  # int
    timestamp: np.ndarray  # epoch seconds
    hour: np.ndarray  # local hour of day
    total: np.ndarray  # yen
    categories: np.ndarray  # bool (n_sales, len(SIM_CATEGORIES))


def simulate_past_sales(population: Population, days: int = 56, seed: int = 0) -> PastSales:
    """Draw the last `days` of natural purchases of every linked customer (vectorised)."""
    rng = np.random.default_rng([population.seed, seed, 1])
    customers = [c for c in population if c.linked]
    rates = np.array([daily_visit_rate(c) for c in customers])
    counts = rng.poisson(rates * days)
    idx = np.repeat(np.array([c.index for c in customers], dtype=np.int64), counts)
    local = np.repeat(np.arange(len(customers)), counts)
    n = len(idx)
    cdf = (
        np.cumsum(np.stack([c.traits.hour_profile for c in customers]), axis=1)
        if customers
        else np.zeros((0, 24))
    )
    hour = np.minimum((cdf[local] < rng.random(n)[:, None]).sum(axis=1), 23)
    day = rng.integers(1, days + 1, size=n)
    start_ts = population.start.timestamp()
    # population.start is local midnight, so hour is the store-local hour of the sale.
    ts = start_ts - day * 86400.0 + hour * 3600.0 + rng.uniform(0, 3600, size=n)
    means = np.array([c.traits.basket_mean for c in customers])
    total = np.round(rng.gamma(4.0, means[local] / 4.0) + 45.0).clip(100)
    tastes = np.stack([c.traits.tastes for c in customers]) if customers else np.zeros((0, 8))
    items = np.maximum(1.0, total / _MEAN_ITEM_PRICE)
    present = 1.0 - (1.0 - tastes[local]) ** items[:, None]
    cats = rng.random((n, len(SIM_CATEGORIES))) < present
    return PastSales(idx, ts, hour, total, cats)


def aggregates(population: Population, sales: PastSales, seed: int = 0) -> list[dict[str, float]]:
    """Per customer, the counters CustomerFeatureStore would hold at the population's start."""
    rng = np.random.default_rng([population.seed, seed, 2])
    start_ts = population.start.timestamp()
    out: list[dict[str, float]] = [{} for _ in population]
    order = np.argsort(sales.customer_index, kind="stable")
    idx = sales.customer_index[order]
    bounds = np.searchsorted(idx, np.arange(len(population) + 1))
    for c in population:
        agg = out[c.index]
        agg["follow_ts"] = start_ts - c.followed_days_ago * 86400.0
        # Coupons from earlier campaigns: about 3 a month since following, over at most 4 months.
        issued = int(rng.poisson(min(c.followed_days_ago, 120.0) / 30.0 * 3.0))
        if issued:
            p = float(p_redeem_many(c, _REFERENCE_CONTEXT, _REFERENCE_OFFERS).mean())
            agg["issued"] = issued
            agg["redeemed"] = int(rng.binomial(issued, p))
        if not c.linked:
            continue  # sales of unlinked customers never reach tenin
        agg["linked"] = 1
        rows = order[bounds[c.index] : bounds[c.index + 1]]
        if len(rows) == 0:
            continue
        agg["sale_count"] = len(rows)
        agg["sale_total"] = float(sales.total[rows].sum())
        agg["first_sale_ts"] = float(sales.timestamp[rows].min())
        agg["last_sale_ts"] = float(sales.timestamp[rows].max())
        for j, cat in enumerate(SIM_CATEGORIES):
            k = int(sales.categories[rows, j].sum())
            if k:
                agg[f"cat:{cat}"] = k
        bands = np.bincount([hour_band(h) for h in sales.hour[rows]], minlength=HOUR_BANDS)
        for b in range(HOUR_BANDS):
            if bands[b]:
                agg[f"hb:{b}"] = int(bands[b])
    return out


def observed_features(
    population: Population, days: int = 56, seed: int = 0, at: datetime | None = None
) -> list[CustomerFeatures]:
    """What tenin would know about each customer at the population's start (or `at`)."""
    sales = simulate_past_sales(population, days, seed)
    now = (at or population.start).timestamp()
    return [features_from_aggregates(agg, now) for agg in aggregates(population, sales, seed)]
