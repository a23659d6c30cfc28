"""The campaign form ↔ API body, and API errors placed on form fields (pure)."""

from __future__ import annotations

import copy
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from services.console.api_client import ApiProblem
from services.console.auth import safe_next
from services.console.pages import campaign_form as cf
from services.console.web import field_errors
from tests.unit.console.conftest import CAMPAIGN

TOKYO = ZoneInfo("Asia/Tokyo")


def test_a_form_becomes_a_typed_body_with_empty_fields_left_out() -> None:
    form = MultiDict(
        [
            ("name", "Autumn"),
            ("starts_at", "2026-11-01T09:00"),
            ("budget.max_coupons", "1,000"),
            ("budget.max_redemptions", ""),
            ("holdout_pct", "12.5"),
            ("pacing", ""),
            ("message_cost", "abc"),
            ("audience.languages", "ja"),
            ("audience.languages", "en"),
            ("offers.0.title", "¥50 off"),
            ("offers.0.discount.type", "amount"),
            ("offers.0.discount.value", "50"),
            ("offers.0.applies_to.kind", "skus"),
            ("offers.0.applies_to.values", "4901, 4902"),
            ("offers.1.title", ""),
            ("offers.1.discount.type", "amount"),
            ("offers.1.applies_to.kind", "categories"),
        ]
    )
    body = cf.body_from_form(form, TOKYO)
    assert body == {
        "name": "Autumn",
        "starts_at": "2026-11-01T09:00:00+09:00",
        "budget": {"max_coupons": 1000},
        "holdout_pct": 12.5,
        "message_cost": "abc",  # sent as typed: the API's 422 names the field
        "audience": {"languages": ["ja", "en"]},
        "offers": [
            {
                "title": "¥50 off",
                "discount": {"type": "amount", "value": 50},
                "applies_to": {"skus": ["4901", "4902"]},
            }
        ],
    }


def test_an_edit_sends_only_what_changed() -> None:
    values = cf.form_from_campaign(CAMPAIGN, TOKYO)
    assert values["starts_at"] == "2026-11-01T00:00"
    form = MultiDict(list(values.items()))
    form.setlist("audience.languages", [])
    unchanged = cf.changes(cf.body_from_form(form, TOKYO), CAMPAIGN)
    assert unchanged == {}
    form["name"] = "Renamed"
    form["budget.max_coupons"] = "900"
    assert cf.changes(cf.body_from_form(form, TOKYO), CAMPAIGN) == {
        "name": "Renamed",
        "budget": {"max_coupons": 900},
    }
    tightened = copy.deepcopy(form)
    tightened["offers.0.discount.value"] = "40"
    patch = cf.changes(cf.body_from_form(tightened, TOKYO), CAMPAIGN)
    assert patch["offers"][0] == {
        "offer_id": "o1",
        "title": "¥50 off",
        "discount": {"type": "amount", "value": 40},
        "applies_to": {"categories": ["onigiri"]},
        "min_basket": 0,
        "valid_hours": 72,
    }


def test_api_errors_land_on_the_field_they_name() -> None:
    names = cf.field_names(3)
    problem = ApiProblem(
        422,
        "Validation failed",
        "2 problems",
        errors=[
            {"field": "ends_at", "message": "ends_at must be after starts_at"},
            {"field": "offers.1.applies_to", "message": "give exactly one of skus or categories"},
            {"field": "revenue_share", "message": "Field required"},
            {"field": "offers.0.applies_to.skus.2", "message": "too long"},
            {"field": "body", "message": "not JSON"},
        ],
    )
    placed, loose = field_errors(problem, names, cf.error_field)
    assert placed == {
        "ends_at": "ends_at must be after starts_at",
        "offers.1.applies_to.values": "give exactly one of skus or categories",
        "revenue_share.pct": "Field required",
        "offers.0.applies_to.values": "too long",
    }
    assert loose == ["not JSON"]


def test_next_is_a_local_path_only() -> None:
    assert safe_next("/campaigns/1?x=2") == "/campaigns/1?x=2"
    for bad in (
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "",
        None,
        "campaigns",
    ):
        assert safe_next(bad) == "/campaigns"
