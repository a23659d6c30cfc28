"""The one feature definition, shared by training and serving."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from shared.model.features import (
    CATEGORIES,
    FEATURE_NAMES,
    N_FEATURES,
    REDEMPTION_PRIOR_RATE,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
    features_from_aggregates,
)

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=JST)
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


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


def test_no_module_reads_the_environment() -> None:
    root = Path(__file__).resolve().parents[4]
    for rel in (
        "shared/model/features.py",
        "shared/model/scoring.py",
        "services/campaign_engine/decisions/policy.py",
    ):
        assert "os.environ" not in (root / rel).read_text(), rel


def test_chat_intents_reach_the_model_as_known_intents() -> None:
    """The chat agent's vocabulary and the model's must not drift apart silently."""
    from shared.model.features import INTENTS, model_intent

    chat_intents = ["greeting", "wants_deals", "small_talk", "thanks", "complaint", "follow"]
    for intent in chat_intents:
        assert model_intent(intent) in INTENTS, intent
    assert model_intent("wants_deals") == "deal_seeking"
    assert model_intent("product_question:coffee") == "coffee"
    assert model_intent("product_question:unknown") == "other"
