"""Console pages over canned API answers: figures formatted for the locale, SVG charts,
the live fragment, not-yet-built APIs, the CSV download and the https cookie."""

from __future__ import annotations

import re

from flask import Flask

from tests.unit.console.conftest import CAMPAIGN_ID, FakeApi, make_app, signed_in_client


def test_the_detail_page_shows_the_report_in_yen_with_its_interval(app: Flask) -> None:
    page = signed_in_client(app).get(f"/campaigns/{CAMPAIGN_ID}").get_data(as_text=True)
    assert '<dd id="figure-issued">4,321</dd>' in page
    assert '<dd id="figure-attributed-revenue">¥1,234,567</dd>' in page
    assert re.search(r'id="figure-incremental-revenue">¥300,000 \(¥120,000 – ¥480,000\)', page)
    assert '<dd id="figure-share-owed">¥61,728</dd>' in page
    assert '<dd id="figure-per-call-fee">¥24,690</dd>' in page
    for label in (
        "Coupons per day",
        "Pacing (even)",
        "Treatment against holdout",
        "Revenue share against per-call fee",
    ):
        assert f'role="img" aria-label="{label}' in page, label
    assert "style=" not in page  # the CSP allows no inline style
    assert "Drops are not available yet." in page


def test_japanese_pages_format_money_for_the_locale(app: Flask) -> None:
    page = signed_in_client(app, "ja").get(f"/campaigns/{CAMPAIGN_ID}").get_data(as_text=True)
    assert '<dd id="figure-attributed-revenue">￥1,234,567</dd>' in page
    assert "ライブレポート" in page
    assert "2026-11-01 00:00" in page  # the window in Tokyo time, as the campaign gave it


def test_coupons_per_day_come_from_the_cumulative_curve(app: Flask) -> None:
    page = signed_in_client(app).get(f"/campaigns/{CAMPAIGN_ID}/live").get_data(as_text=True)
    chart = re.search(r'<svg[^>]*aria-label="Coupons per day".*?</svg>', page, re.S)
    assert chart
    heights = re.findall(
        r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', chart.group(0)
    )
    day1, day2 = (float(h) for h in heights[:2])
    assert day1 > 0 and day2 > 0 and abs(day1 / day2 - 30 / 40) < 0.01  # 30 then 40 coupons


def test_the_live_fragment_polls_and_is_only_the_region(app: Flask, api: FakeApi) -> None:
    client = signed_in_client(app)
    page = client.get(f"/campaigns/{CAMPAIGN_ID}").get_data(as_text=True)
    assert f'hx-get="/campaigns/{CAMPAIGN_ID}/live" hx-trigger="every 5s"' in page
    api.calls.clear()
    api.report_body["counts"]["redeemed"] = 1300  # type: ignore[index]  # canned report
    fragment = client.get(f"/campaigns/{CAMPAIGN_ID}/live").get_data(as_text=True)
    assert '<dd id="figure-redeemed">1,300</dd>' in fragment
    assert "<html" not in fragment
    assert api.calls == ["report"]  # one API call per refresh


def test_a_draft_has_no_report_yet(app: Flask, api: FakeApi) -> None:
    api.report_body = None
    fragment = signed_in_client(app).get(f"/campaigns/{CAMPAIGN_ID}/live").get_data(as_text=True)
    assert "No report yet: the campaign has not been activated." in fragment


def test_the_model_page_says_when_its_api_is_not_there(app: Flask, api: FakeApi) -> None:
    client = signed_in_client(app)
    assert "Not available yet." in client.get("/models").get_data(as_text=True)
    api.models_problem = None
    page = client.get("/models").get_data(as_text=True)
    assert '<dd id="serving-propensity">v3</dd>' in page
    assert '<th scope="row">v4</th><td>candidate</td>' in page
    assert "DR lower bound below the champion" in page


def test_the_statement_csv_is_a_download(app: Flask) -> None:
    answer = signed_in_client(app).get(f"/statements.csv?campaign_id={CAMPAIGN_ID}&period=2026-11")
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        f'attachment; filename="statement-{CAMPAIGN_ID}-2026-11.csv"'
    )
    assert answer.data.startswith(b"date,kind")


def test_an_unknown_campaign_is_a_404_page(app: Flask) -> None:
    answer = signed_in_client(app).get("/campaigns/nope")
    assert answer.status_code == 404 and "Page not found" in answer.get_data(as_text=True)


def test_cookies_are_secure_behind_a_trusted_https_proxy(api: FakeApi) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    trusted = make_app(api, trust_proxy=True).test_client().get("/sign-in", headers=https)
    assert "Secure" in trusted.headers["Set-Cookie"]
    assert trusted.headers["Strict-Transport-Security"].startswith("max-age=")
    untrusted = make_app(api).test_client().get("/sign-in", headers=https)
    assert "Secure" not in untrusted.headers["Set-Cookie"]
    public_https = make_app(api, https=True).test_client().get("/sign-in")
    assert "Secure" in public_https.headers["Set-Cookie"]
