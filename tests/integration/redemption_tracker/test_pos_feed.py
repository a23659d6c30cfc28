"""The POS feed on real PostgreSQL: batches, duplicates, auth, pending decisions, events."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy import func, select

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CouponCheck, Outbox, Redemption, Transaction
from shared.crypto import member_hash
from tests.integration.redemption_tracker.support import (
    live_redemptions,
    one_coupon,
    outbox_events,
    post,
)
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    apply,
    decision_event,
    linked_event,
    tx,
    uid,
)


def test_every_transaction_is_kept_and_a_resend_is_a_duplicate(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    code = CampaignSpec(tracker).code()
    batch = [tx(total=500), tx(total=800, coupons=[code]), tx(total=0, items=[])]
    first = post(client, auth["pos"], store, *batch)
    assert [r["status"] for r in first] == ["accepted"] * 3
    again = post(client, auth["pos"], store, *batch)
    assert [r["status"] for r in again] == ["duplicate"] * 3
    assert [r["coupons"] for r in again] == [r["coupons"] for r in first]
    assert all(r["errors"] == [] for r in again)
    with tracker.sessions() as s:
        rows = s.execute(select(func.count()).where(Transaction.store_id == store)).scalar_one()
    assert rows == 3
    assert live_redemptions(tracker, code) == 1
    assert len(outbox_events(tracker, "coupon.redeemed", code=code)) == 1


def test_resend_with_different_content_keeps_the_original(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    t = tx(total=500)
    post(client, auth["pos"], store, t)
    [r] = post(client, auth["pos"], store, {**t, "total": 9999})
    assert r["status"] == "duplicate"
    assert r["errors"][0]["field"] == "transaction_id"
    with tracker.sessions() as s:
        total = s.execute(
            select(Transaction.total).where(
                Transaction.store_id == store, Transaction.transaction_id == t["transaction_id"]
            )
        ).scalar_one()
    assert total == 500


def test_same_transaction_twice_in_one_batch(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    code = CampaignSpec(tracker).code()
    t = tx(coupons=[code])
    first, second = post(client, auth["pos"], store, t, t)
    assert first["status"] == "accepted" and second["status"] == "duplicate"
    assert second["coupons"] == first["coupons"]
    assert first["coupons"][0]["status"] == "redeemed"


def test_a_malformed_transaction_is_reported_by_field_and_the_rest_processed(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    code = CampaignSpec(tracker).code()
    bad = tx(total=100)
    bad["total"] = "one hundred"
    bad["items"][0]["qty"] = 0
    del bad["occurred_at"]
    elsewhere = {**tx(), "store_id": store + "-elsewhere"}
    results = post(
        client, auth["pos"], store, tx(), bad, tx(coupons=[code]), "not an object", elsewhere
    )
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "rejected",
    ]
    fields = {e["field"] for e in results[1]["errors"]}
    assert fields == {
        "transactions.1.total",
        "transactions.1.items.0.qty",
        "transactions.1.occurred_at",
    }
    assert results[1]["transaction_id"] == bad["transaction_id"]
    assert results[2]["coupons"][0]["status"] == "redeemed"
    assert results[3]["errors"][0]["field"] == "transactions.3"
    assert [e["field"] for e in results[4]["errors"]] == ["transactions.4.store_id"]


def test_bad_requests_are_problems_naming_the_field(
    client: FlaskClient, auth: dict, store: str
) -> None:
    h = {"Authorization": auth["pos"]}
    too_many = client.post(
        "/v1/pos/transactions",
        headers=h,
        json={"store_id": store, "transactions": [tx() for _ in range(1001)]},
    )
    assert too_many.status_code == 422
    assert too_many.mimetype == "application/problem+json"
    assert too_many.get_json()["errors"][0]["field"] == "transactions"
    broken = client.post(
        "/v1/pos/transactions", headers=h, data=b"{not json", content_type="application/json"
    )
    assert broken.status_code == 400 and "Traceback" not in broken.get_data(as_text=True)
    missing = client.post("/v1/pos/transactions", headers=h, json={"transactions": [tx()]})
    assert missing.status_code == 422
    assert missing.get_json()["errors"][0]["field"] == "store_id"


def test_a_store_key_posts_only_for_its_own_store(
    client: FlaskClient, auth: dict, store: str
) -> None:
    body = {"store_id": store, "transactions": [tx()]}
    assert client.post("/v1/pos/transactions", json=body).status_code == 401
    assert (
        client.post(
            "/v1/pos/transactions", json=body, headers={"Authorization": "Bearer tn_nope_nope"}
        ).status_code
        == 401
    )
    other = client.post("/v1/pos/transactions", json=body, headers={"Authorization": auth["other"]})
    assert other.status_code == 403
    marketer = client.post(
        "/v1/pos/transactions", json=body, headers={"Authorization": auth["marketer"]}
    )
    assert marketer.status_code == 403
    report = client.get("/v1/campaigns/x/report", headers={"Authorization": auth["pos"]})
    assert report.status_code == 403


def test_member_ids_are_kept_only_as_keyed_hashes(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    member = "M" + uid().upper()
    customer = uid("c_")
    apply(tracker, linked_event(tracker, customer, member))
    t = tx(member_id=member, total=640)
    post(client, auth["pos"], store, t, tx(member_id="M-UNLINKED-" + uid()))
    with tracker.sessions() as s:
        row = s.execute(
            select(Transaction).where(Transaction.transaction_id == t["transaction_id"])
        ).scalar_one()
        bodies = s.execute(select(Outbox.body).where(Outbox.body.contains(store))).scalars().all()
    assert row.member_hash == member_hash(tracker.secret, member)
    assert member not in json.dumps([row.items, row.fingerprint, row.member_hash])
    assert not any(member in b for b in bodies)
    [sale] = outbox_events(tracker, "sale.recorded", store_id=store)
    assert sale["payload"]["customer_id"] == customer
    assert sale["payload"]["transaction_id"] == t["transaction_id"]
    assert sale["payload"]["categories"] == ["onigiri"] and sale["key"] == customer


def test_a_genuine_code_is_honoured_before_its_decision_arrives(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    coupon = one_coupon(client, auth["pos"], store, tx(coupons=[code]))
    assert coupon["status"] == "redeemed" and coupon["discount"] == 100
    [event] = outbox_events(tracker, "coupon.redeemed", code=code)
    assert event["payload"]["customer_id"] is None
    customer = uid("c_")
    apply(tracker, decision_event(customer, c.campaign_id, "treatment", code))
    report = client.get(
        f"/v1/campaigns/{c.campaign_id}/report", headers={"Authorization": auth["marketer"]}
    ).get_json()
    assert report["counts"]["issued"] == 1 and report["counts"]["redeemed"] == 1
    assert report["counts"]["redemption_rate"] == 1.0


def test_the_decision_terms_are_used_when_known(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    customer = uid("c_")
    apply(
        tracker,
        decision_event(
            customer, c.campaign_id, "treatment", code, discount={"type": "percent", "value": 10}
        ),
    )
    coupon = one_coupon(client, auth["pos"], store, tx(total=1230, coupons=[code]))
    assert coupon["discount"] == 123
    [event] = outbox_events(tracker, "coupon.redeemed", code=code)
    assert event["payload"]["customer_id"] == customer and event["key"] == customer


def test_precheck_reports_and_changes_nothing(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    h = {"Authorization": auth["pos"]}

    def counts() -> tuple[int, int, int]:
        with tracker.sessions() as s:
            return (
                s.execute(select(func.count()).select_from(Redemption)).scalar_one(),
                s.execute(select(func.count()).select_from(CouponCheck)).scalar_one(),
                s.execute(select(func.count()).select_from(Outbox)).scalar_one(),
            )

    before = counts()
    r = client.get(f"/v1/coupons/{code.lower()}", headers=h).get_json()
    assert r["valid"] is True and r["reason"] is None and r["code"] == code
    assert r["offer"]["campaign_id"] == c.campaign_id and r["expires_at"]
    assert counts() == before
    assert client.get("/v1/coupons/TN-NOPE", headers=h).get_json()["reason"] == "unknown_code"
    elsewhere = client.get(f"/v1/coupons/{code}?store_id=S-other", headers=h)
    assert elsewhere.status_code == 403
    one_coupon(client, auth["pos"], store, tx(coupons=[code]))
    after = client.get(f"/v1/coupons/{code}", headers=h).get_json()
    assert after["valid"] is False and after["reason"] == "already_redeemed"
