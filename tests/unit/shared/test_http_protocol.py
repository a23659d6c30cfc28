"""Protocol points every service app shares (issue 11, "low but expected"): deeply nested
JSON is a 400, every response says nosniff, the report page carries a CSP, and /metrics
is not served to the public."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from services.campaign_engine.app import create_app as campaign_engine_app
from services.chat_agent.app import create_app as chat_agent_app
from services.redemption_tracker.app import create_app as tracker_app
from services.redemption_tracker.bootstrap import Tracker, bootstrap
from shared.auth import create_key
from shared.config import Settings
from shared.db import make_engine, make_session_factory, unit_of_work
from tests.support.redemption_tracker.builders import CampaignSpec, uid

DEEP = b"[" * 100_000
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def settings(sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=sqlite_url,
        secret_key="protocol-test-secret-key-" + uid() + "-" * 8,
        line_channel_secret="protocol-test-channel-secret-" + uid(),
        data_dir=Path(tmp_path_factory.mktemp("protocol")),
    )


@pytest.fixture(scope="module")
def tracker(settings: Settings) -> Iterator[Tracker]:
    tracker = bootstrap(settings)
    yield tracker
    tracker.engine.dispose()


def key(settings: Settings, role: str, store: str | None = None) -> dict[str, str]:
    engine = make_engine(settings.effective_database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        plaintext = create_key(session, settings.secret_key, role, store)
    engine.dispose()
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture(scope="module")
def apps(settings: Settings, tracker: Tracker) -> dict[str, Flask]:
    return {
        "campaign_engine": campaign_engine_app(settings),
        "chat_agent": chat_agent_app(settings),
        "redemption_tracker": tracker_app(tracker=tracker),
    }


def signed(settings: Settings, body: bytes) -> dict[str, str]:
    digest = hmac.new(settings.line_channel_secret.encode(), body, hashlib.sha256).digest()
    return {**JSON, "X-Line-Signature": base64.b64encode(digest).decode()}


def assert_body_problem(response: TestResponse) -> None:
    assert response.status_code == 400, response.data[:300]
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert problem["errors"][0]["field"] == "body"


def test_deeply_nested_json_is_a_400_naming_the_body_in_every_app(
    settings: Settings, apps: dict[str, Flask]
) -> None:
    marketer = apps["campaign_engine"].test_client()
    assert_body_problem(
        marketer.post("/v1/campaigns", data=DEEP, headers={**JSON, **key(settings, "marketer")})
    )
    webhook = apps["chat_agent"].test_client()
    assert_body_problem(webhook.post("/webhooks/line", data=DEEP, headers=signed(settings, DEEP)))
    till = apps["redemption_tracker"].test_client()
    pos = key(settings, "pos", uid("S"))
    assert_body_problem(till.post("/v1/pos/transactions", data=DEEP, headers={**JSON, **pos}))
    assert_body_problem(till.post("/v1/pos/voids", data=DEEP, headers={**JSON, **pos}))


@pytest.mark.parametrize("service", ["campaign_engine", "chat_agent", "redemption_tracker"])
def test_every_response_says_nosniff(apps: dict[str, Flask], service: str) -> None:
    client = apps[service].test_client()
    for path in ("/healthz", "/openapi.json", "/no-such-page"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path


def test_the_report_page_has_a_csp_that_keeps_its_inline_style_and_charts(
    settings: Settings, tracker: Tracker
) -> None:
    client: FlaskClient = tracker_app(tracker=tracker).test_client()
    campaign = CampaignSpec(tracker)
    page = client.get(
        f"/v1/campaigns/{campaign.campaign_id}/report.html", headers=key(settings, "marketer")
    )
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script may run
    html = page.get_data(as_text=True)
    assert "<style>" in html and "style-src 'unsafe-inline'" in csp
    assert "frame-ancestors 'none'" in csp
    if "data:image/png" in html:
        assert "img-src data:" in csp


@pytest.mark.parametrize("service", ["campaign_engine", "chat_agent", "redemption_tracker"])
def test_metrics_are_not_served_to_the_public(
    settings: Settings, apps: dict[str, Flask], service: str
) -> None:
    client = apps[service].test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer tn_x_y"}).status_code == 404
    assert client.get("/metrics", headers=key(settings, "marketer")).status_code == 404
    admin = client.get("/metrics", headers=key(settings, "admin"))
    assert admin.status_code == 200 and b"# HELP" in admin.data
