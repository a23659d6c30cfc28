"""Issue 11, findings 2, 6 and 9: the till's clock is bounded, on real PostgreSQL.

Each test here failed on a7aaca2: a backdated coupon was redeemed, a future-dated sale
was accepted, one year-0001 timestamp made the whole batch a 500, and a void had no
window.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from tests.integration.redemption_tracker.support import ledger, one_coupon, post, void
from tests.support.redemption_tracker.builders import CampaignSpec, now, tx


def later(tracker: Tracker, by: timedelta) -> FlaskClient:
    """The tracker's app with its clock moved forward."""
    return create_app(tracker=replace(tracker, clock=lambda: now() + by)).test_client()


def test_backdating_past_the_allowed_lateness_cannot_redeem_an_expired_coupon(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, starts_at=now() - timedelta(days=20))
    code = c.code(expires_at=now() - timedelta(days=4))
    refused = one_coupon(client, auth["pos"], store, tx(coupons=[code]))
    assert refused["reason"] == "expired"
    # The same coupon again, the sale dated before its expiry (and before the 72 h lateness).
    backdated = one_coupon(
        client, auth["pos"], store, tx(coupons=[code], occurred_at=now() - timedelta(days=5))
    )
    assert (backdated["status"], backdated["reason"]) == ("rejected", "late_report")
    assert ledger(tracker, c.campaign_id) == []
    report = client.get(
        f"/v1/campaigns/{c.campaign_id}/report", headers={"Authorization": auth["marketer"]}
    ).get_json()
    assert report["counts"]["rejected_by_reason"] == {"expired": 1, "late_report": 1}


def test_the_issues_replay_a_code_refused_as_expired_then_sent_backdated(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, starts_at=now() - timedelta(days=20))
    code = c.code(expires_at=now() - timedelta(days=1))
    assert one_coupon(client, auth["pos"], store, tx(coupons=[code]))["reason"] == "expired"
    replay = tx(coupons=[code.lower().replace("-", "")], occurred_at=now() - timedelta(days=2))
    backdated = one_coupon(client, auth["pos"], store, replay)
    assert (backdated["status"], backdated["reason"]) == ("rejected", "late_report")
    assert ledger(tracker, c.campaign_id) == []


def test_an_offline_tills_late_sale_before_expiry_still_counts_and_is_marked_late(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, starts_at=now() - timedelta(days=20))
    code = c.code(expires_at=now() - timedelta(days=1))  # never seen by the tracker before
    offline = tx(coupons=[code], occurred_at=now() - timedelta(days=2))
    assert one_coupon(client, auth["pos"], store, offline)["status"] == "redeemed"
    report = client.get(
        f"/v1/campaigns/{c.campaign_id}/report", headers={"Authorization": auth["marketer"]}
    ).get_json()
    assert report["counts"]["late"] == 1


def test_a_sale_dated_in_the_future_is_rejected_naming_occurred_at(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    ahead = tx(coupons=[c.code()], occurred_at=now() + timedelta(minutes=10))
    within_skew = tx(coupons=[c.code()], occurred_at=now() + timedelta(minutes=2))
    first, second = post(client, auth["pos"], store, ahead, within_skew)
    assert first["status"] == "rejected" and first["coupons"] == []
    assert [e["field"] for e in first["errors"]] == ["transactions.0.occurred_at"]
    assert second["status"] == "accepted" and second["coupons"][0]["status"] == "redeemed"
    assert len(ledger(tracker, c.campaign_id)) == 1


def test_late_but_allowed_redemptions_are_counted_in_the_report(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, starts_at=now() - timedelta(days=5))
    offline = one_coupon(
        client, auth["pos"], store, tx(coupons=[c.code()], occurred_at=now() - timedelta(hours=30))
    )
    assert offline["status"] == "redeemed"
    assert one_coupon(client, auth["pos"], store, tx(coupons=[c.code()]))["status"] == "redeemed"
    h = {"Authorization": auth["marketer"]}
    report = client.get(f"/v1/campaigns/{c.campaign_id}/report", headers=h).get_json()
    assert (report["counts"]["redeemed"], report["counts"]["late"]) == (2, 1)
    page = client.get(f"/v1/campaigns/{c.campaign_id}/report.html", headers=h)
    assert "<th>redeemed late</th><td>1</td>" in page.get_data(as_text=True)


def test_one_out_of_range_timestamp_rejects_only_its_transaction(
    client: FlaskClient, auth: dict, store: str
) -> None:
    good = tx()
    early = {**tx(), "occurred_at": "0001-01-01T00:00:00+01:00"}
    late = {**tx(), "occurred_at": "9999-12-31T23:59:59-12:00"}
    results = post(client, auth["pos"], store, early, good, late)
    assert [r["status"] for r in results] == ["rejected", "accepted", "rejected"]
    assert results[0]["errors"][0]["field"] == "transactions.0.occurred_at"
    assert results[2]["errors"][0]["field"] == "transactions.2.occurred_at"


def test_void_with_an_out_of_range_or_impossible_time_is_a_422(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    t = tx(occurred_at=now() - timedelta(hours=1))
    post(client, auth["pos"], store, t)

    def void_at(when: str) -> tuple[int, list[str]]:
        r = void(client, auth["pos"], store, t, occurred_at=when)
        return r.status_code, [e["field"] for e in r.get_json().get("errors", [])]

    assert void_at("0001-01-01T00:00:00+01:00") == (422, ["occurred_at"])
    assert void_at("9999-12-31T23:59:59-12:00") == (422, ["occurred_at"])
    before_sale = (now() - timedelta(hours=2)).isoformat()
    assert void_at(before_sale) == (422, ["occurred_at"])
    assert void_at((now() + timedelta(hours=1)).isoformat()) == (422, ["occurred_at"])
    assert void_at(now().isoformat())[0] == 200


def test_a_void_outside_the_window_is_refused_and_changes_nothing(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    t = tx(coupons=[c.code()])
    one_coupon(client, auth["pos"], store, t)
    # The window is checked before the statement period, which has closed too by then.
    r = void(later(tracker, timedelta(days=31)), auth["pos"], store, t)
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    assert r.get_json()["errors"] == [
        {"field": "transaction_id", "message": "is older than the void window"}
    ]
    assert [e.kind for e in ledger(tracker, c.campaign_id)] == ["redemption"]


def test_a_void_recorded_in_time_stays_idempotent_after_the_window(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    t = tx()
    post(client, auth["pos"], store, t)
    assert void(client, auth["pos"], store, t).get_json()["status"] == "voided"
    again = void(later(tracker, timedelta(days=45)), auth["pos"], store, t)
    assert again.status_code == 200 and again.get_json()["status"] == "already_voided"
