"""Issue 11 (rate limits, low item): a batch's rejected codes are one event per reason.

Failed on a7aaca2, where 1,000 junk codes in one batch wrote 1,000 outbox events.
"""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from tests.integration.redemption_tracker.support import outbox_events, post
from tests.support.redemption_tracker.builders import CampaignSpec, forged_code, now, tx


def test_a_batch_of_junk_codes_is_one_event_per_reason(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    forged = forged_code(c.number)
    junk = [tx(coupons=[f"JUNK-{i}-{j}" for j in range(10)]) for i in range(100)]
    forgeries = [tx(coupons=[forged]) for _ in range(5)]
    good, expired = c.code(), c.code(expires_at=now() - timedelta(days=1))
    genuine = [tx(coupons=[good]), tx(coupons=[expired]), tx(coupons=[expired])]
    results = post(client, auth["pos"], store, *junk, *forgeries, *genuine)
    assert len(results) == 108 and all(r["status"] == "accepted" for r in results)

    events = outbox_events(tracker, "coupon.redemption_rejected", store_id=store)
    by_reason = {e["payload"]["reason"]: e["payload"] for e in events}
    assert len(events) == 3, [e["payload"] for e in events]
    assert by_reason["unknown_code"]["count"] == 1000
    assert by_reason["unknown_code"]["transaction_id"] == junk[0]["transaction_id"]
    assert by_reason["forged"]["count"] == 5
    assert by_reason["expired"]["count"] == 2
    assert by_reason["expired"]["campaign_id"] == c.campaign_id
    assert len(outbox_events(tracker, "coupon.redeemed", store_id=store)) == 1
