"""Explanations, coupon lookup and forecasts on real PostgreSQL and Redis, with decisions made by
the engine's decision path and the shipped propensity model."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from services.campaign_engine.app import create_app
from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.models import Coupon, Customer, CustomerSale, RedemptionSeen
from shared.auth import create_key
from shared.config import DEFAULT_MODEL_DIR, Settings
from shared.db import unit_of_work, utcnow
from shared.model.scoring import PropensityScorer
from tests.unit.campaign_engine.fakes import active_campaign, campaign_body, offer_request


@pytest.fixture
def shipped(make_engine_for: Callable[..., Engine], ce_settings: Settings) -> Engine:
    settings = replace(ce_settings, model_dir=DEFAULT_MODEL_DIR)
    return make_engine_for(settings=settings, scorer=PropensityScorer(DEFAULT_MODEL_DIR))


@pytest.fixture
def client(shipped: Engine) -> FlaskClient:
    return create_app(engine=shipped).test_client()


@pytest.fixture
def key(shipped: Engine) -> str:
    with unit_of_work(shipped.sessions) as session:
        return create_key(session, shipped.settings.secret_key, "marketer", None)


def _call(
    client: FlaskClient, key: str, method: str, path: str, headers: Any = None, **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {key}", **(headers or {})}
    return client.open(path, method=method, headers=headers, **kw)


def _loyal_customer(engine: Engine) -> str:
    customer = f"c_{uuid.uuid4().hex[:16]}"
    now = utcnow().timestamp()
    engine.features.load_aggregates(
        customer,
        {
            "sale_count": 12,
            "sale_total": 9_600,
            "first_sale_ts": now - 28 * 86400,
            "last_sale_ts": now - 86400,
            "cat:onigiri": 9,
            "hb:3": 8,
            "follow_ts": now - 200 * 86400,
        },
    )
    with unit_of_work(engine.sessions) as session:
        session.add(Customer(customer_id=customer, language="ja"))
    return customer


def _deciding_at(
    make_engine_for: Callable[..., Engine], shipped: Engine, past: datetime, **campaign: Any
) -> Engine:
    """An engine on the same database whose clock stands at `past`, with a campaign live then."""
    earlier = make_engine_for(
        settings=shipped.settings, scorer=PropensityScorer(DEFAULT_MODEL_DIR), clock=lambda: past
    )
    active_campaign(earlier.sessions, past, **campaign)
    return earlier


def test_a_decided_request_is_explained_and_found_by_its_coupon(
    shipped: Engine, client: FlaskClient, key: str
) -> None:
    active_campaign(shipped.sessions, utcnow())
    decision = shipped.decide(offer_request(_loyal_customer(shipped)))
    assert decision is not None and decision.coupon_code is not None
    path = f"/v1/decisions/{decision.decision_id}/explanation"
    response = _call(client, key, "GET", path + "?lang=en")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model_version"] == shipped.scorer.model_version
    assert body["reason"] in ("exploit", "explore") and body["candidates"][0]["chosen"]
    assert len(body["features"]) >= 3
    contributions = [abs(f["contribution"]) for f in body["features"]]
    assert contributions == sorted(contributions, reverse=True)
    assert "(+" in body["summary"] or "(-" in body["summary"]
    ja = _call(client, key, "GET", path, headers={"Accept-Language": "ja"})
    assert ja.get_json()["language"] == "ja"
    found = _call(client, key, "GET", f"/v1/decisions?coupon_code={decision.coupon_code}")
    assert [d["decision_id"] for d in found.get_json()["items"]] == [decision.decision_id]
    # A NUL byte never reaches PostgreSQL (which would refuse the string with an error).
    assert _call(client, key, "GET", "/v1/decisions/%00/explanation").status_code == 404
    assert _call(client, key, "POST", "/v1/campaigns/%00/forecast").status_code == 404


def test_a_draft_without_history_is_forecast_with_low_confidence(
    shipped: Engine, client: FlaskClient, key: str
) -> None:
    for _ in range(20):
        _loyal_customer(shipped)
    created = _call(client, key, "POST", "/v1/campaigns", json=campaign_body(utcnow()))
    campaign = created.get_json()["campaign_id"]
    body = _call(client, key, "POST", f"/v1/campaigns/{campaign}/forecast").get_json()
    assert body["eligible_audience"] == 20 and body["confidence"] == "low"
    assert body["basis"] == {
        "kind": "model",
        "model_version": shipped.scorer.model_version,
        "decision_rows": 0,
        "similar_campaigns": 0,
        "coupons_observed": 0,
    }
    assert any("no similar campaign history" in n for n in body["notes"])


def test_a_draft_like_an_earlier_campaign_is_forecast_from_its_outcomes(
    make_engine_for: Callable[..., Engine], shipped: Engine, client: FlaskClient, key: str
) -> None:
    past = utcnow() - timedelta(days=40)
    earlier = _deciding_at(make_engine_for, shipped, past)
    decisions = [earlier.decide(offer_request(_loyal_customer(shipped))) for _ in range(60)]
    codes = [d.coupon_code for d in decisions if d is not None and d.coupon_code]
    assert len(codes) == 60
    with unit_of_work(shipped.sessions) as session:
        session.add_all(
            RedemptionSeen(coupon_code=code, transaction_id=f"t{i}", redeemed_at=past, discount=50)
            for i, code in enumerate(codes[:15])
        )
    with shipped.sessions() as session:
        assert session.query(Coupon).count() == 60
    created = _call(client, key, "POST", "/v1/campaigns", json=campaign_body(utcnow()))
    campaign = created.get_json()["campaign_id"]
    body = _call(client, key, "POST", f"/v1/campaigns/{campaign}/forecast").get_json()
    assert body["basis"]["kind"] == "both"
    assert (body["basis"]["similar_campaigns"], body["basis"]["coupons_observed"]) == (1, 60)
    assert body["eligible_audience"] == 60
    assert not any("no similar campaign history" in n for n in body["notes"])
    assert not any("have no logged features" in n for n in body["notes"])


def test_the_forecast_measures_the_coupon_effect_on_logged_holdout_spend(
    make_engine_for: Callable[..., Engine], shipped: Engine, client: FlaskClient, key: str
) -> None:
    past = utcnow() - timedelta(days=20)
    earlier = _deciding_at(make_engine_for, shipped, past, holdout_pct=50)
    decided = [earlier.decide(offer_request(_loyal_customer(shipped))) for _ in range(100)]
    rng = random.Random(5)
    with unit_of_work(shipped.sessions) as session:
        for i, d in enumerate(decided):
            assert d is not None
            coupon = d.arm in ("treatment", "explore")
            session.add(
                CustomerSale(
                    transaction_id=f"t{i}",
                    customer_id=d.customer_id,
                    amount=rng.randint(900, 1100) if coupon else rng.randint(500, 700),
                    occurred_at=past + timedelta(days=1),
                )
            )
    arms = Counter(d.arm for d in decided if d is not None)
    assert min(arms["treatment"] + arms["explore"], arms["holdout"]) >= 30
    created = _call(client, key, "POST", "/v1/campaigns", json=campaign_body(utcnow()))
    campaign = created.get_json()["campaign_id"]
    body = _call(client, key, "POST", f"/v1/campaigns/{campaign}/forecast").get_json()
    treated = arms["treatment"] + arms["explore"]
    assert f"measured on {treated} treated and {arms['holdout']} holdout decisions" in " ".join(
        body["notes"]
    )
    assert body["incremental_revenue"]["low"] > 0  # ~400 yen a coupon, far from zero
