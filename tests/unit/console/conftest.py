"""Unit fixtures: the console on a fake API client (canned answers, as the real APIs give
them), in-process sessions and limits."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.console.api_client import ApiClient, ApiProblem
from services.console.app import create_app
from services.console.config import ConsoleConfig
from services.console.sessions import MemoryStore
from shared.ratelimit import RateLimiter

KEY = "tn_0123456789ab_" + "s" * 43
CAMPAIGN_ID = "7f1c2d9e-0000-4000-8000-000000000001"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

CAMPAIGN: dict[str, Any] = {
    "campaign_id": CAMPAIGN_ID,
    "number": 1,
    "status": "active",
    "name": "Autumn onigiri",
    "starts_at": "2026-11-01T00:00:00+09:00",
    "ends_at": "2026-11-30T23:00:00+09:00",
    "offers": [
        {
            "offer_id": "o1",
            "index": 0,
            "withdrawn": False,
            "title": "¥50 off",
            "discount": {"type": "amount", "value": 50},
            "applies_to": {"skus": None, "categories": ["onigiri"]},
            "min_basket": 0,
            "valid_hours": 72,
        }
    ],
    "budget": {"max_coupons": 1000, "max_redemptions": None, "max_discount_total": None},
    "caps": {"per_customer_per_day": 1, "per_customer_total": 3},
    "holdout_pct": 10.0,
    "audience": None,
    "revenue_share": {"pct": 5.0, "basis": "attributed"},
    "per_call_fee": 2,
    "message_cost": 3,
    "pacing": "even",
    "created_at": "2026-10-30T00:00:00+00:00",
    "updated_at": "2026-10-30T00:00:00+00:00",
}

REPORT: dict[str, Any] = {
    "campaign_id": CAMPAIGN_ID,
    "name": "Autumn onigiri",
    "status": "active",
    "currency": "JPY",
    "as_of": "2026-11-10T03:00:00+00:00",
    "counts": {"decisions": 12345, "issued": 4321, "redeemed": 1234, "late": 0, "voided": 1},
    "money": {
        "attributed_revenue": 1234567,
        "discount_cost": 61700,
        "net_attributed_revenue": 1172867,
    },
    "lift": {
        "treatment_mean_spend": 1800.0,
        "holdout_mean_spend": 1500.0,
        "treated_customers": 1000,
        "incremental_revenue": 300000,
        "ci95_low": 120000,
        "ci95_high": 480000,
        "note": None,
    },
    "revenue_share": {
        "basis": "attributed",
        "pct": 5.0,
        "owed": 61728,
        "on_attributed_basis": 61728,
        "on_incremental_basis": 15000,
    },
    "per_call_fee": {"fee": 2, "decisions": 12345, "would_have_earned": 24690},
    "pacing": {
        "mode": "even",
        "max_coupons": 1000,
        "max_discount_total": None,
        "points": [
            {
                "at": "2026-11-01T00:00:00+09:00",
                "coupons": 0,
                "ideal_coupons": 0.0,
                "committed": 0,
                "ideal_committed": None,
            },
            {
                "at": "2026-11-01T20:00:00+09:00",
                "coupons": 30,
                "ideal_coupons": 28.0,
                "committed": 1500,
                "ideal_committed": None,
            },
            {
                "at": "2026-11-02T16:00:00+09:00",
                "coupons": 70,
                "ideal_coupons": 56.0,
                "committed": 3500,
                "ideal_committed": None,
            },
        ],
    },
}


class FakeApi(ApiClient):
    """The API client with canned answers; `calls` records what a page asked for."""

    def __init__(self) -> None:
        super().__init__("http://engine.invalid", "http://tracker.invalid")
        self.calls: list[str] = []
        self.report_body: dict[str, Any] | None = copy.deepcopy(REPORT)
        self.models_problem: ApiProblem | None = ApiProblem(404, "Not Found")

    def check_key(self, key: str) -> None:
        self.calls.append("check_key")
        if key != KEY:
            raise ApiProblem(401, "Unauthorized")

    def campaigns(self, key: str, status: str | None = None) -> list[dict[str, Any]]:
        self.calls.append("campaigns")
        return [copy.deepcopy(CAMPAIGN)]

    def campaign(self, key: str, campaign_id: str) -> dict[str, Any]:
        self.calls.append("campaign")
        if campaign_id != CAMPAIGN_ID:
            raise ApiProblem(404, "Not Found", errors=[{"field": "campaign_id", "message": "no"}])
        return copy.deepcopy(CAMPAIGN)

    def report(self, key: str, campaign_id: str) -> dict[str, Any] | None:
        self.calls.append("report")
        return copy.deepcopy(self.report_body)

    def drops(self, key: str, campaign_id: str) -> list[dict[str, Any]]:
        self.calls.append("drops")
        raise ApiProblem(404, "Not Found")  # a route not built: no field named

    def models(self, key: str) -> dict[str, Any]:
        self.calls.append("models")
        if self.models_problem:
            raise self.models_problem
        return {
            "kinds": [
                {
                    "kind": "propensity",
                    "serving": "v3",
                    "current_file": "v3",
                    "versions": [
                        {
                            "version": "v4",
                            "status": "candidate",
                            "created_at": "2026-11-09T00:00:00+00:00",
                            "rows": 5000,
                            "metrics": {"auc": 0.71},
                        },
                        {
                            "version": "v3",
                            "status": "serving",
                            "created_at": "2026-11-01T00:00:00+00:00",
                            "rows": 4000,
                            "metrics": {"auc": 0.7},
                        },
                    ],
                    "history": [
                        {
                            "action": "refuse",
                            "from_version": "v3",
                            "to_version": "v4",
                            "actor": "ops",
                            "at": "2026-11-09T01:00:00+00:00",
                            "reason": "DR lower bound below the champion",
                        }
                    ],
                }
            ]
        }

    def statement_csv(self, key: str, campaign_id: str, period: str) -> tuple[bytes, str]:
        self.calls.append("statement_csv")
        return b"date,kind\n2026-11-01,redemption\n", f"statement-{campaign_id}-{period}.csv"


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def make_app(api: FakeApi, **over: Any) -> Flask:
    config = ConsoleConfig(
        campaign_engine_url="http://engine.invalid",
        redemption_tracker_url="http://tracker.invalid",
        secret_key="unit-test-secret-" + "k" * 32,
        **over,
    )
    app = create_app(config, store=MemoryStore(), limiter=RateLimiter(None, "unit"), api=api)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def app(api: FakeApi) -> Flask:
    return make_app(api)


def signed_in_client(app: Flask, lang: str = "en") -> FlaskClient:
    client = app.test_client()
    client.set_cookie("console_lang", lang)
    page = client.get("/sign-in").get_data(as_text=True)
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]  # the form always has one
    assert client.post("/sign-in", data={"key": KEY, "csrf_token": token}).status_code == 303
    return client
