"""Issue 11, findings 5 (default cap) and 6, low items: the campaign API's bounds, on PostgreSQL.

Each test failed on a7aaca2: a huge fee or a year-9999 date was a 500, Infinity was
stored as non-JSON, a fee over 2^31 did not fit its column, a NUL reached the database,
and a campaign without `per_customer_total` had no lifetime cap.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.db import utcnow
from tests.integration.campaign_engine.test_api import (  # the marketer's client and its fixtures
    Api,
    _offer,
    api,
    app,
    db_sessions,
    keys,
)
from tests.unit.campaign_engine.fakes import campaign_body

__all__ = ["api", "app", "db_sessions", "keys"]


OUT_OF_BOUNDS = [
    ({"per_call_fee": 10**40}, "per_call_fee"),
    ({"per_call_fee": 10**12 + 1}, "per_call_fee"),
    ({"starts_at": "9999-12-31T23:59:59-12:00"}, "starts_at"),
    ({"starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at"),
    ({"ends_at": "9999-12-31T23:59:59-12:00"}, "ends_at"),
    ({"budget": {"max_coupons": 10**30}}, "budget.max_coupons"),
    ({"offers": [_offer(discount={"type": "amount", "value": 10**20})]}, "offers.0.discount.value"),
    ({"offers": [_offer(min_basket=10**15)]}, "offers.0.min_basket"),
    ({"name": "spring\x00sale"}, "name"),
    ({"name": "spring\x1b[31m"}, "name"),
    ({"offers": [_offer(title="a\x00")]}, "offers.0.title"),
    ({"offers": [_offer(applies_to={"skus": ["49\x00"]})]}, "offers.0.applies_to.skus.0"),
]


@pytest.mark.parametrize(("change", "field"), OUT_OF_BOUNDS)
def test_out_of_bounds_values_are_a_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = api.call("POST", "/v1/campaigns", campaign_body(utcnow(), **change))
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert field in [e["field"] for e in response.get_json()["errors"]]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("audience.min_visits_per_week", "Infinity"),
        ("audience.max_visits_per_week", "NaN"),
        ("holdout_pct", "NaN"),
        ("revenue_share.pct", "-Infinity"),
    ],
)
def test_non_finite_numbers_are_refused(api: Api, path: str, text: str) -> None:
    body = campaign_body(utcnow(), audience={})
    head, _, leaf = path.rpartition(".")
    target = body[head] if head else body
    target[leaf] = "__NUMBER__"
    raw = json.dumps(body).replace('"__NUMBER__"', text)
    response = api.call("POST", "/v1/campaigns", data=raw, content_type="application/json")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert path in [e["field"] for e in response.get_json()["errors"]]


def test_money_beyond_32_bits_is_stored_and_read_back(api: Api) -> None:
    fee = 5_000_000_000
    created = api.create(per_call_fee=fee)
    got = api.call("GET", f"/v1/campaigns/{created['campaign_id']}").get_json()
    assert got["per_call_fee"] == fee


def test_a_patch_with_an_out_of_range_date_is_a_422(api: Api) -> None:
    cid = api.create()["campaign_id"]
    response = api.call("PATCH", f"/v1/campaigns/{cid}", {"ends_at": "9999-12-31T23:59:59-12:00"})
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["ends_at"]


def test_a_control_character_in_the_path_is_a_404_not_a_database_error(api: Api) -> None:
    assert api.call("GET", "/v1/campaigns/a%00b").status_code == 404
    assert api.call("POST", "/v1/campaigns/a%00b/activate").status_code == 404


def test_a_campaign_without_a_lifetime_cap_gets_the_default(api: Api) -> None:
    body = campaign_body(utcnow())
    del body["caps"]
    created = api.call("POST", "/v1/campaigns", body).get_json()
    assert created["caps"] == {"per_customer_per_day": 1, "per_customer_total": 3}
    partial = api.create(caps={"per_customer_per_day": 2})
    assert partial["caps"] == {"per_customer_per_day": 2, "per_customer_total": 3}
    # An explicit null is the marketer's own choice of no lifetime limit.
    unlimited = api.create(caps={"per_customer_per_day": 1, "per_customer_total": None})
    assert unlimited["caps"]["per_customer_total"] is None
