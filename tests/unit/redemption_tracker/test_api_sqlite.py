"""The POS feed on the embedded SQLite database: the main paths, edge to edge over HTTP."""

from __future__ import annotations

from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from tests.support.redemption_tracker.builders import CampaignSpec, tx


def post(client: FlaskClient, auth: dict[str, str], store: str, *txs: dict) -> list[dict]:
    r = client.post(
        "/v1/pos/transactions",
        json={"store_id": store, "transactions": list(txs)},
        headers={"Authorization": auth["pos"]},
    )
    assert r.status_code == 200, r.get_json()
    return r.get_json()["results"]


def test_redeem_then_duplicate_then_void(
    client: FlaskClient, tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    t = tx(total=1000, coupons=[code])
    [first] = post(client, auth, store, t)
    assert first["status"] == "accepted"
    assert first["coupons"] == [
        {"code": code, "status": "redeemed", "reason": None, "discount": 100}
    ]
    [again] = post(client, auth, store, t)
    assert again["status"] == "duplicate"
    assert again["coupons"] == first["coupons"]
    [other] = post(client, auth, store, tx(coupons=[code]))
    assert other["coupons"][0]["reason"] == "already_redeemed"

    r = client.post(
        "/v1/pos/voids",
        json={
            "store_id": store,
            "transaction_id": t["transaction_id"],
            "occurred_at": t["occurred_at"],
            "reason": "refund",
        },
        headers={"Authorization": auth["pos"]},
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "voided"
    assert r.get_json()["coupons"][0]["reusable"] is True
    [reuse] = post(client, auth, store, tx(coupons=[code]))
    assert reuse["coupons"][0]["status"] == "redeemed"

    report = client.get(
        f"/v1/campaigns/{c.campaign_id}/report", headers={"Authorization": auth["marketer"]}
    )
    assert report.status_code == 200, report.get_json()
    body = report.get_json()
    assert body["counts"]["redeemed"] == 1 and body["counts"]["voided"] == 1
    assert body["money"]["attributed_revenue"] == 1000
    assert body["revenue_share"]["owed"] == 50


def test_a_missing_counter_row_is_created_on_first_redemption(
    client: FlaskClient, tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    from sqlalchemy import delete

    from services.redemption_tracker.models import CampaignUsage
    from shared.db import unit_of_work

    c = CampaignSpec(tracker, budget={"max_redemptions": 1})
    with unit_of_work(tracker.sessions) as s:
        s.execute(delete(CampaignUsage).where(CampaignUsage.campaign_id == c.campaign_id))
    [ok] = post(client, auth, store, tx(coupons=[c.code()]))
    [over] = post(client, auth, store, tx(coupons=[c.code()]))
    assert ok["coupons"][0]["status"] == "redeemed"
    assert over["coupons"][0]["reason"] == "redemption_budget_exhausted"
