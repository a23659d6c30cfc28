"""Voids on real PostgreSQL: new ledger entries only, the code freed again, idempotent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from tests.integration.redemption_tracker.support import (
    ledger,
    live_redemptions,
    one_coupon,
    outbox_events,
    post,
    void,
)
from tests.support.redemption_tracker.builders import CampaignSpec, now, tx


def test_void_reverses_with_new_entries_and_frees_the_code(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    t = tx(total=2000, coupons=[code])
    one_coupon(client, auth["pos"], store, t)
    [entry] = ledger(tracker, c.campaign_id)
    assert (entry.kind, entry.revenue, entry.discount, entry.share) == (
        "redemption",
        2000,
        100,
        100,
    )

    r = void(client, auth["pos"], store, t)
    assert r.status_code == 200
    assert r.get_json() == {
        "transaction_id": t["transaction_id"],
        "status": "voided",
        "coupons": [{"code": code, "discount": 100, "reusable": True}],
    }
    original, reversal = ledger(tracker, c.campaign_id)
    assert (original.id, original.revenue, original.share) == (entry.id, 2000, 100)
    assert (reversal.kind, reversal.revenue, reversal.discount, reversal.share) == (
        "void",
        -2000,
        -100,
        -100,
    )
    assert reversal.redemption_id == entry.redemption_id
    assert live_redemptions(tracker, code) == 0
    assert len(outbox_events(tracker, "coupon.voided", code=code)) == 1

    again = void(client, auth["pos"], store, t)
    assert again.get_json()["status"] == "already_voided"
    assert len(ledger(tracker, c.campaign_id)) == 2
    assert len(outbox_events(tracker, "coupon.voided", code=code)) == 1

    # The code is usable again, by a new transaction.
    assert one_coupon(client, auth["pos"], store, tx(coupons=[code]))["status"] == "redeemed"
    report = client.get(
        f"/v1/campaigns/{c.campaign_id}/report", headers={"Authorization": auth["marketer"]}
    ).get_json()
    assert report["money"] == {
        "attributed_revenue": 1000,
        "discount_cost": 100,
        "net_attributed_revenue": 900,
    }
    assert report["counts"]["redeemed"] == 1 and report["counts"]["voided"] == 1


def test_a_voided_code_past_its_expiry_is_not_reusable(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code(expires_at=now() + timedelta(minutes=1))
    # Sold at a time the code was valid; voided after it expired.
    t = tx(coupons=[code], occurred_at=now() - timedelta(minutes=30))
    one_coupon(client, auth["pos"], store, t)
    tracker_later = replace(tracker, clock=lambda: now() + timedelta(hours=3))
    later = create_app(tracker=tracker_later).test_client()
    body = void(later, auth["pos"], store, t).get_json()
    assert body["coupons"] == [{"code": code, "discount": 100, "reusable": False}]
    coupon = one_coupon(
        later, auth["pos"], store, tx(coupons=[code], occurred_at=now() + timedelta(hours=3))
    )
    assert coupon["reason"] == "expired"


def test_void_errors(client: FlaskClient, auth: dict, store: str) -> None:
    t = tx()
    post(client, auth["pos"], store, t)
    assert void(client, auth["pos"], store, tx()).status_code == 404
    assert void(client, auth["other"], store, t).status_code == 403
    bad = client.post(
        "/v1/pos/voids",
        json={"store_id": store, "transaction_id": "x"},
        headers={"Authorization": auth["pos"]},
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {"occurred_at", "reason"}


def test_concurrent_voids_reverse_once(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    t = tx(coupons=[c.code(), c.code()], total=3000)
    post(client, auth["pos"], store, t)
    app = create_app(tracker=tracker)

    def attempt(_: int) -> str:
        return void(app.test_client(), auth["pos"], store, t).get_json()["status"]

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(attempt, range(10)))
    assert sorted(statuses) == ["already_voided"] * 9 + ["voided"]
    entries = ledger(tracker, c.campaign_id)
    assert sorted(e.kind for e in entries) == ["redemption"] * 2 + ["void"] * 2
    assert sum(e.revenue for e in entries) == 0 and sum(e.share for e in entries) == 0
    # Only the first coupon of a campaign on a basket carries the basket as revenue.
    assert sorted(e.revenue for e in entries if e.kind == "redemption") == [0, 3000]
