"""The app's documents and ops endpoints, and how the event copies are kept (SQLite)."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.handlers import handle_event
from services.redemption_tracker.models import Campaign
from tests.support.redemption_tracker.builders import CampaignSpec, now, tx


def test_openapi_documents_every_endpoint_from_the_models(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) >= {
        "/v1/pos/transactions",
        "/v1/pos/voids",
        "/v1/coupons/{code}",
        "/v1/campaigns/{campaign_id}/report",
        "/v1/statements",
    }
    batch = doc["components"]["schemas"]["PosBatchDoc"]
    assert batch["properties"]["transactions"]["maxItems"] == 1000
    assert "PosTransaction" in doc["components"]["schemas"]


def test_ops_endpoints_and_metrics(client: FlaskClient, auth: dict, store: str) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["checks"] == {"database": True}
    client.post(
        "/v1/pos/transactions",
        json={"store_id": store, "transactions": [tx()]},
        headers={"Authorization": auth["pos"]},
    )
    admin = {"Authorization": auth["admin"]}
    metrics = client.get("/metrics", headers=admin).get_data(as_text=True)
    assert 'tenin_rt_transactions_total{outcome="accepted",source="http"}' in metrics
    assert "tenin_rt_ingest_seconds_bucket" in metrics


def test_an_older_campaign_snapshot_never_overwrites_a_newer_one(tracker: Tracker) -> None:
    c = CampaignSpec(tracker)
    c.publish("campaign.paused", status="paused")
    stale = c.publish("campaign.activated", occurred_at=now() - timedelta(hours=1), status="active")
    with tracker.sessions() as s:
        row = s.get(Campaign, c.campaign_id)
        assert row is not None and row.status == "paused"
    assert handle_event(tracker, "test.campaigns", stale) is False  # seen before: no effect


def test_a_campaign_number_taken_by_another_campaign_is_poison(tracker: Tracker) -> None:
    import pytest

    from shared.consumer import PoisonMessage

    first = CampaignSpec(tracker)
    with pytest.raises(PoisonMessage, match="already belongs"):
        CampaignSpec(tracker, number=first.number)
