"""The marketer campaign API on real PostgreSQL: keys, validation, lifecycle, tightening."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.app import create_app
from services.campaign_engine.models import Outbox
from shared.auth import create_key, revoke_key
from shared.config import Settings
from shared.db import make_engine, make_session_factory, unit_of_work, utcnow
from shared.events import decode
from tests.unit.campaign_engine.fakes import campaign_body


@pytest.fixture(scope="module")
def app(real_settings: Settings) -> Flask:
    return create_app(replace(real_settings, max_request_bytes=64 * 1024))


@pytest.fixture(scope="module")
def db_sessions(real_settings: Settings) -> Iterator[Callable[[], Session]]:
    engine = make_engine(str(real_settings.database_url), pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


def _key(sessions: Callable[[], Session], secret: str, role: str, store: str | None = None) -> str:
    with unit_of_work(sessions) as session:
        return create_key(session, secret, role, store)


@pytest.fixture(scope="module")
def keys(db_sessions: Callable[[], Session], real_settings: Settings) -> dict[str, str]:
    secret = real_settings.secret_key
    return {
        role: _key(db_sessions, secret, role, "S001" if role == "pos" else None)
        for role in ("marketer", "pos", "admin")
    }


class Api:
    """A marketer's view of the API."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client, self.key = client, key

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None, **kw: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        if body is not None:
            kw["json"] = body
        return self.client.open(path, method=method, headers=headers, **kw)

    def create(self, **over: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/campaigns", campaign_body(utcnow(), **over))
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def act(self, campaign_id: str, action: str) -> Any:
        return self.call("POST", f"/v1/campaigns/{campaign_id}/{action}")


@pytest.fixture
def api(app: Flask, keys: dict[str, str]) -> Api:
    return Api(app.test_client(), keys["marketer"])


def outbox_events(sessions: Callable[[], Session], campaign_id: str) -> list[Any]:
    with sessions() as session:
        rows = session.execute(
            select(Outbox.body).where(Outbox.key == campaign_id).order_by(Outbox.id)
        )
        return [decode(body.encode()) for body in rows.scalars()]


# --- keys ------------------------------------------------------------------------------


def test_keys_and_roles(
    api: Api, keys: dict[str, str], db_sessions: Callable[[], Session], real_settings: Settings
) -> None:
    assert api.client.get("/v1/campaigns").status_code == 401
    assert api.call("GET", "/v1/campaigns", key="tn_nope_nope").status_code == 401
    assert api.call("GET", "/v1/campaigns", key="garbage").status_code == 401
    forbidden = api.call("GET", "/v1/campaigns", key=keys["pos"])
    assert forbidden.status_code == 403 and forbidden.mimetype == "application/problem+json"
    assert api.call("GET", "/v1/campaigns", key=keys["admin"]).status_code == 200
    revoked = _key(db_sessions, real_settings.secret_key, "marketer")
    with unit_of_work(db_sessions) as session:
        revoke_key(session, revoked.split("_")[1])
    assert api.call("GET", "/v1/campaigns", key=revoked).status_code == 401
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/openapi.json").status_code == 200


# --- create, get, list -------------------------------------------------------------------


def test_create_get_and_list_with_pagination(api: Api) -> None:
    created = [api.create(name=f"page {i}") for i in range(3)]
    first = created[0]
    assert first["status"] == "draft" and first["offers"][0]["index"] == 0
    assert first["caps"] == {"per_customer_per_day": None, "per_customer_total": None}
    got = api.call("GET", f"/v1/campaigns/{first['campaign_id']}")
    assert got.status_code == 200 and got.get_json() == first

    seen, cursor = [], None
    for _ in range(1000):
        page = api.call(
            "GET",
            "/v1/campaigns",
            query_string={"limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert page.status_code == 200
        body = page.get_json()
        assert len(body["items"]) <= 2
        seen += [c["campaign_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    mine = [c["campaign_id"] for c in created]
    assert [c for c in seen if c in mine] == mine
    assert len(seen) == len(set(seen))

    assert api.call("GET", "/v1/campaigns/no-such").status_code == 404
    huge = base64.urlsafe_b64encode(b"n:99999999999999999999999").decode()
    for bad in (
        {"limit": 0},
        {"limit": "x"},
        {"cursor": "!!"},
        {"cursor": huge},
        {"status": "zombie"},
        {"page": 2},
    ):
        response = api.call("GET", "/v1/campaigns", query_string=bad)
        assert response.status_code == 422, bad
        assert response.get_json()["errors"][0]["field"] == next(iter(bad))


def test_times_come_back_in_the_zone_they_were_written_in(api: Api) -> None:
    created = api.create(starts_at="2026-12-01T00:00:00+09:00", ends_at="2026-12-31T00:00:00+09:00")
    assert created["starts_at"] == "2026-12-01T00:00:00+09:00"


# --- bad input ---------------------------------------------------------------------------


def _offer(**over: Any) -> dict[str, Any]:
    offer = {
        "title": "t",
        "discount": {"type": "amount", "value": 50},
        "applies_to": {"skus": ["4901"]},
    }
    offer.update(over)
    return offer


INVALID = [
    ({"ends_at": "2026-01-01T00:00:00+00:00", "starts_at": "2026-02-01T00:00:00+00:00"}, "ends_at"),
    ({"starts_at": "2026-02-01T00:00:00"}, "starts_at"),  # no time zone
    ({"starts_at": "next tuesday"}, "starts_at"),
    ({"offers": []}, "offers"),
    ({"offers": [_offer()] * 17}, "offers"),
    ({"offers": [_offer(discount={"type": "percent", "value": 101})]}, "offers.0.discount.value"),
    ({"offers": [_offer(discount={"type": "bogo", "value": 1})]}, "offers.0.discount.type"),
    ({"offers": [_offer(discount={"type": "amount", "value": -1})]}, "offers.0.discount.value"),
    ({"offers": [_offer(discount={"type": "amount", "value": 1.5})]}, "offers.0.discount.value"),
    ({"offers": [_offer(min_basket="300")]}, "offers.0.min_basket"),
    ({"offers": [_offer(min_basket=-5)]}, "offers.0.min_basket"),
    ({"offers": [_offer(valid_hours=0)]}, "offers.0.valid_hours"),
    ({"offers": [_offer(applies_to={"skus": ["1"], "categories": ["x"]})]}, "offers.0.applies_to"),
    ({"offers": [_offer(applies_to={})]}, "offers.0.applies_to"),
    ({"offers": [_offer(colour="red")]}, "offers.0.colour"),
    ({"budget": {"max_coupons": -1}}, "budget.max_coupons"),
    ({"budget": {"max_coupons": True}}, "budget.max_coupons"),
    ({"budget": {}}, "budget.max_coupons"),
    ({"budget": {"max_coupons": 5, "max_discount_total": 10.5}}, "budget.max_discount_total"),
    ({"caps": {"per_customer_per_day": -1}}, "caps.per_customer_per_day"),
    ({"holdout_pct": 100.5}, "holdout_pct"),
    ({"holdout_pct": -1}, "holdout_pct"),
    ({"revenue_share": {"pct": 150, "basis": "attributed"}}, "revenue_share.pct"),
    ({"revenue_share": {"pct": 5, "basis": "vibes"}}, "revenue_share.basis"),
    ({"per_call_fee": -3}, "per_call_fee"),
    ({"audience": {"languages": ["fr"]}}, "audience.languages.0"),
    ({"surprise": 1}, "surprise"),
    ({"name": ""}, "name"),
]


@pytest.mark.parametrize(("change", "field"), INVALID)
def test_an_invalid_body_is_a_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = api.call("POST", "/v1/campaigns", campaign_body(utcnow(), **change))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert {"type", "title", "status", "detail", "errors"} <= set(problem)
    assert field in [e["field"] for e in problem["errors"]], problem["errors"]


def test_malformed_wrongly_typed_and_oversized_bodies(api: Api) -> None:
    path = "/v1/campaigns"
    malformed = api.call("POST", path, data="{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.get_json()["errors"][0]["field"] == "body"
    assert api.call("POST", path, data="x=1", content_type="text/plain").status_code == 415
    assert api.call("POST", path, [1, 2]).status_code == 422
    huge = api.call(
        "POST", path, data=json.dumps({"name": "x" * 70_000}), content_type="application/json"
    )
    assert huge.status_code == 413 and huge.mimetype == "application/problem+json"
    assert "Traceback" not in huge.get_data(as_text=True)


# --- lifecycle ---------------------------------------------------------------------------


def test_every_lifecycle_transition_over_http(api: Api, db_sessions: Callable[[], Session]) -> None:
    cid = api.create()["campaign_id"]
    steps = [
        ("pause", 409, "draft"),
        ("end", 409, "draft"),
        ("activate", 200, "active"),
        ("activate", 409, "active"),
        ("pause", 200, "paused"),
        ("pause", 409, "paused"),
        ("activate", 200, "active"),
        ("pause", 200, "paused"),
        ("end", 200, "ended"),
        ("activate", 409, "ended"),
        ("pause", 409, "ended"),
        ("end", 409, "ended"),
    ]
    for action, status, after in steps:
        response = api.act(cid, action)
        assert response.status_code == status, (action, response.get_json())
        if status == 409:
            problem = response.get_json()
            assert (
                problem["reason"] == "illegal_transition"
                and problem["errors"][0]["field"] == "status"
            )
        assert api.call("GET", f"/v1/campaigns/{cid}").get_json()["status"] == after
    assert [e.type for e in outbox_events(db_sessions, cid)] == [
        "campaign.activated",
        "campaign.paused",
        "campaign.activated",
        "campaign.paused",
        "campaign.ended",
    ]
    assert api.act("no-such", "activate").status_code == 404
    patched = api.call("PATCH", f"/v1/campaigns/{cid}", {"name": "too late"})
    assert patched.status_code == 409 and patched.get_json()["reason"] == "campaign_ended"


def test_a_campaign_past_its_window_cannot_be_activated(api: Api) -> None:
    now = utcnow()
    cid = api.create(
        starts_at=(now - timedelta(days=3)).isoformat(),
        ends_at=(now - timedelta(days=1)).isoformat(),
    )["campaign_id"]
    response = api.act(cid, "activate")
    assert response.status_code == 409 and response.get_json()["errors"][0]["field"] == "ends_at"


def test_the_snapshot_carries_every_offer_field_the_tracker_needs(
    api: Api,
    db_sessions: Callable[[], Session],
) -> None:
    offer = {
        "title": "onigiri 30 off",
        "discount": {"type": "amount", "value": 30},
        "applies_to": {"categories": ["onigiri", "bento"]},
        "min_basket": 200,
        "valid_hours": 24,
    }
    created = api.create(offers=[offer])
    api.act(created["campaign_id"], "activate")
    [event] = outbox_events(db_sessions, created["campaign_id"])
    snapshot = event.payload["campaign"]
    assert snapshot["number"] == created["number"] and snapshot["status"] == "active"
    assert snapshot["offers"] == [
        {**offer, "offer_id": created["offers"][0]["offer_id"], "index": 0, "category": "onigiri"}
    ]


# --- PATCH ---------------------------------------------------------------------------------


def test_a_draft_may_change_anything(api: Api) -> None:
    created = api.create(budget={"max_coupons": 10})
    cid = created["campaign_id"]
    response = api.call(
        "PATCH",
        f"/v1/campaigns/{cid}",
        {
            "budget": {"max_coupons": 1000},
            "holdout_pct": 20,
            "caps": {"per_customer_total": 3},
            "offers": [
                _offer(title="new"),
                {**_offer(title="kept"), "offer_id": created["offers"][0]["offer_id"]},
            ],
        },
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["budget"]["max_coupons"] == 1000 and body["holdout_pct"] == 20
    assert body["caps"] == {"per_customer_per_day": None, "per_customer_total": 3}
    assert [(o["title"], o["index"]) for o in body["offers"]] == [("new", 0), ("kept", 1)]
    assert body["offers"][1]["offer_id"] == created["offers"][0]["offer_id"]


def test_a_live_campaign_only_tightens_and_every_change_is_announced(
    api: Api,
    db_sessions: Callable[[], Session],
) -> None:
    created = api.create(
        offers=[_offer(title="a"), _offer(title="b")],
        budget={"max_coupons": 100, "max_discount_total": 5000},
    )
    cid = created["campaign_id"]
    a, b = (o["offer_id"] for o in created["offers"])
    api.act(cid, "activate")

    def patch(body: dict[str, Any]) -> Any:
        return api.call("PATCH", f"/v1/campaigns/{cid}", body)

    looser = [
        ({"budget": {"max_coupons": 101}}, "budget.max_coupons"),
        ({"budget": {"max_discount_total": None}}, "budget.max_discount_total"),
        (
            {
                "offers": [
                    {**_offer(title="a", discount={"type": "amount", "value": 60}), "offer_id": a}
                ]
            },
            "offers.0.discount.value",
        ),
        ({"offers": [{**_offer(title="a"), "offer_id": a}, _offer(title="new")]}, "offers.1"),
        ({"holdout_pct": 50}, "holdout_pct"),
        ({"starts_at": utcnow().isoformat()}, "starts_at"),
    ]
    for body, field in looser:
        response = patch(body)
        assert response.status_code == 409, (body, response.get_json())
        problem = response.get_json()
        assert problem["reason"] == "not_tightened"
        assert field in [e["field"] for e in problem["errors"]]
    unknown = patch({"offers": [{**_offer(), "offer_id": "nope"}]})
    assert (
        unknown.status_code == 422
        and unknown.get_json()["errors"][0]["field"] == "offers.0.offer_id"
    )
    invalid = patch({"ends_at": "2000-01-01T00:00:00+00:00"})
    assert invalid.status_code == 422 and invalid.get_json()["errors"][0]["field"] == "ends_at"
    for required in ("name", "budget", "caps", "offers", "revenue_share", "holdout_pct"):
        nulled = patch({required: None})
        assert nulled.status_code == 422, (required, nulled.get_json())
        assert nulled.get_json()["errors"][0]["field"] == required
    assert patch({"budget": {"surprise": 1}}).get_json()["errors"][0]["field"] == "budget.surprise"

    tighter = patch(
        {
            "name": "renamed",
            "budget": {"max_coupons": 50},
            "offers": [
                {**_offer(title="a2", discount={"type": "amount", "value": 40}), "offer_id": a}
            ],
        }
    )
    assert tighter.status_code == 200, tighter.get_json()
    body = tighter.get_json()
    assert body["budget"] == {
        "max_coupons": 50,
        "max_redemptions": None,
        "max_discount_total": 5000,
    }
    assert [(o["offer_id"], o["withdrawn"], o["discount"]["value"]) for o in body["offers"]] == [
        (a, False, 40),
        (b, True, 50),
    ]

    api.act(cid, "pause")
    assert patch({"caps": {"per_customer_per_day": 0}}).status_code == 200
    events = outbox_events(db_sessions, cid)
    assert [e.type for e in events] == [
        "campaign.activated",
        "campaign.activated",
        "campaign.paused",
        "campaign.paused",
    ]
    snapshot = events[1].payload["campaign"]
    assert snapshot["name"] == "renamed" and snapshot["budget"]["max_coupons"] == 50
    # A withdrawn offer stays in the snapshot: codes already issued for it must still verify.
    assert [(o["offer_id"], o["discount"]["value"]) for o in snapshot["offers"]] == [
        (a, 40),
        (b, 50),
    ]
    assert events[3].payload["campaign"]["caps"]["per_customer_per_day"] == 0


def test_the_openapi_document_comes_from_the_validating_models(api: Api) -> None:
    doc = api.client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert {
        "/v1/campaigns",
        "/v1/campaigns/{campaign_id}",
        "/v1/campaigns/{campaign_id}/activate",
        "/v1/campaigns/{campaign_id}/pause",
        "/v1/campaigns/{campaign_id}/end",
    } <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert schemas["CampaignIn"]["additionalProperties"] is False
    assert set(schemas["CampaignIn"]["required"]) == {
        "name",
        "starts_at",
        "ends_at",
        "offers",
        "budget",
        "revenue_share",
    }
    assert schemas["Discount"]["properties"]["type"]["enum"] == ["amount", "percent", "free_item"]
    params = {p["name"] for p in doc["paths"]["/v1/campaigns"]["get"]["parameters"]}
    assert params == {"limit", "cursor", "status"}


def test_readiness_checks_the_database_redis_and_kafka(
    app: Flask, real_settings: Settings, keys: dict[str, str]
) -> None:
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"] == {"database": True, "redis": True, "kafka": True}
    broken = create_app(replace(real_settings, redis_url="redis://127.0.0.1:1/0"))
    not_ready = broken.test_client().get("/readyz")
    assert not_ready.status_code == 503 and not_ready.get_json()["checks"]["redis"] is False
    assert app.test_client().get("/metrics").status_code == 404  # operators only
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    assert app.test_client().get("/metrics", headers=admin).status_code == 200
