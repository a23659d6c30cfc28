"""POST /v1/campaigns/{id}/forecast on the served app (SQLite, the small real model)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.campaign_engine.models import Customer
from shared.db import unit_of_work, utcnow
from tests.unit.campaign_engine.fakes import campaign_body


def _call(client: FlaskClient, key: str, method: str, path: str, **kw: Any) -> Any:
    return client.open(path, method=method, headers={"Authorization": f"Bearer {key}"}, **kw)


def _customers(sessions: Callable[[], Session], n: int, **over: Any) -> None:
    with unit_of_work(sessions) as session:
        session.add_all(
            Customer(customer_id=f"c_{uuid.uuid4().hex[:12]}", **over) for _ in range(n)
        )


def _draft(client: FlaskClient, key: str, **over: Any) -> str:
    created = _call(client, key, "POST", "/v1/campaigns", json=campaign_body(utcnow(), **over))
    assert created.status_code == 201, created.get_json()
    return created.get_json()["campaign_id"]  # type: ignore[no-any-return]


def test_a_draft_is_forecast_for_its_audience_and_admits_its_thin_basis(
    client: FlaskClient, marketer: str, sessions: Any
) -> None:
    _customers(sessions, 40, language="en")
    _customers(sessions, 10, language="ja")
    _customers(sessions, 5, language="en", following=False)
    _customers(sessions, 5, language="en", opted_out=True)
    campaign = _draft(client, marketer, holdout_pct=10, audience={"languages": ["en"]})
    response = _call(client, marketer, "POST", f"/v1/campaigns/{campaign}/forecast")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["eligible_audience"], body["treated_audience"], body["holdout_audience"]) == (
        40,
        36,
        4,
    )
    assert body["status"] == "draft" and body["confidence"] == "low"
    assert body["basis"]["kind"] == "model" and body["basis"]["decision_rows"] == 0
    assert body["basis"]["model_version"].startswith("prop-")
    assert any("no similar campaign history" in n for n in body["notes"])
    assert "40 of 40 eligible customers have no logged features" in body["notes"]
    for name in ("coupons", "redemptions", "discount_cost", "incremental_revenue"):
        interval = body[name]
        assert interval["low"] <= interval["estimate"] <= interval["high"], name
    assert len(body["burn"]) >= 30 and body["burn"][0]["day"] <= body["burn"][-1]["day"]


def test_the_body_may_be_empty_or_name_a_seed_and_nothing_else(
    client: FlaskClient, marketer: str
) -> None:
    campaign = _draft(client, marketer)
    path = f"/v1/campaigns/{campaign}/forecast"
    first = _call(client, marketer, "POST", path, json={"seed": 3}).get_json()
    again = _call(client, marketer, "POST", path, json={"seed": 3}).get_json()
    assert first == again  # the same seed draws the same intervals
    bad = _call(client, marketer, "POST", path, json={"seed": "x", "extra": 1})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {"seed", "extra"}


def test_only_a_draft_or_active_campaign_is_forecast(client: FlaskClient, marketer: str) -> None:
    missing = _call(client, marketer, "POST", f"/v1/campaigns/{uuid.uuid4()}/forecast")
    assert missing.status_code == 404
    assert missing.get_json()["errors"][0]["field"] == "campaign_id"
    odd = _call(client, marketer, "POST", "/v1/campaigns/%00/forecast")
    assert odd.status_code == 404
    campaign = _draft(client, marketer)
    for action in ("activate", "pause"):
        assert (
            _call(client, marketer, "POST", f"/v1/campaigns/{campaign}/{action}").status_code == 200
        )
    paused = _call(client, marketer, "POST", f"/v1/campaigns/{campaign}/forecast")
    assert paused.status_code == 409 and paused.get_json()["reason"] == "not_forecastable"
