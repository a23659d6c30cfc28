"""Reports and statements on real PostgreSQL: the statement lines add up to the report."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.reports.periods import close_periods
from tests.integration.redemption_tracker.support import ledger, one_coupon, post, void
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    apply,
    decision_event,
    delivered_event,
    linked_event,
    tx,
    uid,
)

JST = ZoneInfo("Asia/Tokyo")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def clocked(tracker: Tracker, clock: Clock) -> tuple[Tracker, FlaskClient]:
    t = replace(tracker, clock=clock)
    return t, create_app(tracker=t).test_client()


def get(client: FlaskClient, auth: dict, url: str) -> dict:
    r = client.get(url, headers={"Authorization": auth["marketer"]})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def statement(client: FlaskClient, auth: dict, campaign_id: str, period: str) -> dict:
    return get(client, auth, f"/v1/statements?campaign_id={campaign_id}&period={period}")


def by_period(report: dict) -> dict[str, dict]:
    return {p["period"]: p for p in report["periods"]}


def test_report_counts_money_and_csv(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, per_call_fee=3)
    customers = [uid("c_") for _ in range(4)]
    codes = [c.code() for _ in range(3)]
    apply(
        tracker,
        *(
            decision_event(cu, c.campaign_id, "treatment", code)
            for cu, code in zip(customers, codes, strict=False)
        ),
        decision_event(customers[3], c.campaign_id, "holdout"),
        delivered_event(codes[0], customers[0], c.campaign_id),
        delivered_event(codes[1], customers[1], c.campaign_id),
    )
    one_coupon(client, auth["pos"], store, tx(total=1200, coupons=[codes[0]]))
    t = tx(total=800, coupons=[codes[1]])
    one_coupon(client, auth["pos"], store, t)
    void(client, auth["pos"], store, t)
    one_coupon(
        client,
        auth["pos"],
        store,
        tx(total=100, coupons=[c.code(expires_at=c.snapshot["starts_at"])]),
    )  # expired: counted among the campaign's rejections
    report = get(client, auth, f"/v1/campaigns/{c.campaign_id}/report")
    assert report["counts"] == {
        "decisions": 4,
        "issued": 3,
        "delivered": 2,
        "redeemed": 1,
        "late": 0,
        "voided": 1,
        "redemption_rate": round(1 / 3, 4),
        "rejected_by_reason": {"expired": 1},
    }
    assert report["money"]["attributed_revenue"] == 1200
    assert report["money"]["discount_cost"] == 100
    assert report["revenue_share"]["owed"] == 60  # 5% of 1,200
    assert report["per_call_fee"] == {"fee": 3, "decisions": 4, "would_have_earned": 12}
    assert report["lift"]["method"] == "welch"

    r = client.get(
        f"/v1/campaigns/{c.campaign_id}/report?format=csv",
        headers={"Authorization": auth["marketer"]},
    )
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = dict(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows["money.attributed_revenue"] == "1200"
    assert rows["revenue_share.owed"] == "60"
    assert rows["counts.rejected_by_reason.expired"] == "1"

    page = client.get(
        f"/v1/campaigns/{c.campaign_id}/report.html",
        headers={"Authorization": auth["marketer"]},
    )
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<th>redeemed</th><td>1</td>" in html
    assert "<th>attributed revenue</th><td>¥1,200</td>" in html
    assert "<th>revenue share owed</th><td>¥60</td>" in html
    assert html.count("data:image/png;base64,") >= 2  # per day, and earnings vs per-call fee
    anonymous = client.get(f"/v1/campaigns/{c.campaign_id}/report.html")
    assert anonymous.status_code == 401


def test_report_and_statement_errors(client: FlaskClient, auth: dict) -> None:
    h = {"Authorization": auth["marketer"]}
    assert client.get("/v1/campaigns/nope/report", headers=h).status_code == 404
    bad = client.get("/v1/statements?campaign_id=x&period=2026-13", headers=h)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "period"
    missing = client.get("/v1/statements?period=2026-11", headers=h)
    assert missing.get_json()["errors"][0]["field"] == "campaign_id"
    csv_bad = client.get("/v1/campaigns/x/report?format=xml", headers=h)
    assert csv_bad.status_code == 422


def test_attributed_statements_add_up_to_the_report_per_period(
    tracker: Tracker, auth: dict, store: str
) -> None:
    clock = Clock(datetime(2026, 11, 20, 12, tzinfo=JST))
    t, client = clocked(tracker, clock)
    c = CampaignSpec(
        t,
        starts_at=datetime(2026, 11, 1, tzinfo=JST),
        ends_at=datetime(2027, 1, 31, tzinfo=JST),
        revenue_share={"pct": 5, "basis": "attributed"},
    )
    first = tx(total=1000, coupons=[c.code()], occurred_at=clock.at)
    one_coupon(client, auth["pos"], store, first)
    kept = tx(total=2001, coupons=[c.code()], occurred_at=clock.at)
    one_coupon(client, auth["pos"], store, kept)
    december = tx(total=1000, coupons=[c.code()], occurred_at=datetime(2026, 12, 1, tzinfo=JST))
    clock.at = datetime(2026, 12, 1, 1, tzinfo=JST)
    one_coupon(client, auth["pos"], store, december)
    one_coupon(client, auth["pos"], store, tx(total=3000, coupons=[c.code()], occurred_at=clock.at))
    clock.at = datetime(2026, 12, 2, 9, tzinfo=JST)
    void(client, auth["pos"], store, december)
    # November's statement is closed: a void never reaches back into it.
    closed = void(client, auth["pos"], store, kept)
    assert closed.status_code == 409, closed.get_json()
    assert closed.get_json()["errors"] == [
        {"field": "transaction_id", "message": "its redemptions are in a closed statement period"}
    ]

    report = get(client, auth, f"/v1/campaigns/{c.campaign_id}/report")
    periods = by_period(report)
    assert periods["2026-11"]["revenue_share"] == 50 + 100  # floor(5% of 2,001) = 100
    assert periods["2026-12"]["revenue_share"] == 50 - 50 + 150
    assert periods["2026-11"]["status"] == "closed" and periods["2026-12"]["status"] == "open"
    for period in ("2026-11", "2026-12"):
        st = statement(client, auth, c.campaign_id, period)
        assert st["total"]["revenue_share"] == periods[period]["revenue_share"]
        assert st["total"]["attributed_revenue"] == periods[period]["attributed_revenue"]
        assert sum(line["revenue_share"] for line in st["lines"]) == st["total"]["revenue_share"]
    dec = statement(client, auth, c.campaign_id, "2026-12")
    assert {(x["date"], x["kind"], x["revenue_share"]) for x in dec["lines"]} == {
        ("2026-12-02", "void", -50),
        ("2026-12-01", "redemption", 200),
    }
    assert (
        report["revenue_share"]["owed"] == 300 == sum(p["revenue_share"] for p in periods.values())
    )
    empty = statement(client, auth, c.campaign_id, "2027-01")
    assert empty["lines"] == [] and empty["total"]["revenue_share"] == 0


def _spend(
    client: FlaskClient, auth: dict, store: str, member: str, total: int, at: datetime
) -> dict:
    t = tx(total=total, member_id=member, occurred_at=at)
    post(client, auth["pos"], store, t)
    return t


def test_incremental_basis_is_booked_by_monthly_closes(
    tracker: Tracker, auth: dict, store: str
) -> None:
    clock = Clock(datetime(2026, 10, 20, tzinfo=JST))
    t, client = clocked(tracker, clock)
    c = CampaignSpec(
        t,
        starts_at=datetime(2026, 10, 1, tzinfo=JST),
        ends_at=datetime(2026, 12, 1, tzinfo=JST),
        revenue_share={"pct": 10, "basis": "incremental"},
    )
    members = {}
    for arm, spends in (("treatment", [1000, 1200, 900, 1100]), ("holdout", [500, 600, 700])):
        for amount in spends:
            customer, member = uid("c_"), "M" + uid()
            apply(
                t, linked_event(t, customer, member), decision_event(customer, c.campaign_id, arm)
            )
            members[customer] = (arm, member)
            _spend(client, auth, store, member, amount, datetime(2026, 10, 10, tzinfo=JST))
    treated = [m for a, m in members.values() if a == "treatment"]

    # October, still open: a provisional amount, not yet in the ledger.
    oct_open = statement(client, auth, c.campaign_id, "2026-10")
    assert oct_open["status"] == "provisional"
    assert oct_open["total"]["revenue_share"] == 180  # 10% of (1,050 − 600) × 4
    assert ledger(t, c.campaign_id) == []

    clock.at = datetime(2026, 11, 15, tzinfo=JST)
    assert close_periods(t, c.campaign_id) == ["2026-10"]
    assert close_periods(t, c.campaign_id) == []  # idempotent
    late = _spend(client, auth, store, treated[0], 2000, datetime(2026, 11, 3, tzinfo=JST))
    report = get(client, auth, f"/v1/campaigns/{c.campaign_id}/report")
    periods = by_period(report)
    assert periods["2026-10"] == {**periods["2026-10"], "status": "closed", "revenue_share": 180}
    assert periods["2026-11"]["status"] == "provisional"
    assert periods["2026-11"]["revenue_share"] == 200  # (2,000 / 4 more per treated) × 4 × 10%
    nov = statement(client, auth, c.campaign_id, "2026-11")
    assert nov["total"]["revenue_share"] == 200 and nov["lines"][-1]["provisional"] is True
    assert report["revenue_share"]["owed"] == 380 == report["revenue_share"]["on_incremental_basis"]

    # December: November closes; a void of the late sale revises the estimate down, and
    # December's close books the (negative) adjustment instead of rewriting November.
    clock.at = datetime(2026, 12, 2, tzinfo=JST)
    assert close_periods(t, c.campaign_id) == ["2026-11"]
    void(client, auth["pos"], store, late)
    clock.at = datetime(2027, 1, 5, tzinfo=JST)
    assert close_periods(t, c.campaign_id) == ["2026-12"]
    report = get(client, auth, f"/v1/campaigns/{c.campaign_id}/report")
    periods = by_period(report)
    assert [periods[p]["revenue_share"] for p in ("2026-10", "2026-11", "2026-12")] == [
        180,
        200,
        -200,
    ]
    for period in ("2026-10", "2026-11", "2026-12", "2027-01"):
        st = statement(client, auth, c.campaign_id, period)
        assert st["total"]["revenue_share"] == periods[period]["revenue_share"]
    closes = [e for e in ledger(t, c.campaign_id) if e.kind == "period_close"]
    assert [e.share for e in closes] == [180, 200, -200]
    assert sum(e.share for e in closes) == report["revenue_share"]["on_incremental_basis"]
    assert report["lift"]["treated_customers"] == 4 and report["lift"]["holdout_customers"] == 3
