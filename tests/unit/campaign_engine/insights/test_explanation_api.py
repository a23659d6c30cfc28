"""GET /v1/decisions/{id}/explanation and GET /v1/decisions?coupon_code= on the served app,
with decisions made by the real decision path and scored by a small real model."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from services.campaign_engine.models import Decision
from shared.db import unit_of_work
from shared.model.features import CustomerFeatures
from tests.unit.campaign_engine.fakes import FakeFeatures, active_campaign, offer_request

Decide = Callable[..., Any]


def _get(client: FlaskClient, key: str, path: str, **headers: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {key}", **headers})


def _decided(
    sessions: Callable[[], Session], decide: Decide, features: FakeFeatures, **over: Any
) -> Decision:
    active_campaign(sessions, **over)
    customer = f"c_{uuid.uuid4().hex[:12]}"
    features.known[customer] = CustomerFeatures(frequency_per_week=5.5, monetary_avg=900.0)
    decision = decide(offer_request(customer))
    assert decision is not None
    return decision  # type: ignore[no-any-return]


def test_a_coupon_is_explained_by_the_feature_that_moved_its_score(
    client: FlaskClient, marketer: str, sessions: Any, decide: Decide, features: FakeFeatures
) -> None:
    decision = _decided(sessions, decide, features)
    response = _get(client, marketer, f"/v1/decisions/{decision.decision_id}/explanation?lang=en")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["arm"] == "treatment" and body["reason"] == "exploit"
    assert body["language"] == "en"
    # The synthetic model redeems on visits per week; this customer visits 5.5 times a week
    # against a new customer's 0, so that feature leads, pushing the score up.
    top = body["features"][0]
    assert top["name"] == "frequency_per_week" and top["contribution"] > 0.5
    assert top["text"] == "visits 5.5 times a week"
    assert body["summary"].startswith("Sent the offer with the highest expected value.")
    assert "Chosen because: visits 5.5 times a week (+" in body["summary"]
    assert body["reference"]["kind"] == "new_customer"
    assert [c["chosen"] for c in body["candidates"]] == [True]
    assert body["candidates"][0]["expected_value"] is not None
    assert body["explained_offer_id"] == decision.offer_id


def test_the_explanation_speaks_japanese_by_accept_language(
    client: FlaskClient, marketer: str, sessions: Any, decide: Decide, features: FakeFeatures
) -> None:
    decision = _decided(sessions, decide, features)
    path = f"/v1/decisions/{decision.decision_id}/explanation"
    body = _get(client, marketer, path, **{"Accept-Language": "ja,en;q=0.5"}).get_json()
    assert body["language"] == "ja"
    assert "選ばれた理由: 週5.5回来店 (+" in body["summary"]
    assert body["summary"].startswith("期待値が最も高いクーポンを送りました。")
    assert _get(client, marketer, path + "?lang=xx").status_code == 422


def test_a_holdout_decision_says_so_and_still_explains_the_offer_it_held_back(
    client: FlaskClient, marketer: str, sessions: Any, decide: Decide, features: FakeFeatures
) -> None:
    decision = _decided(sessions, decide, features, holdout_pct=100)
    body = _get(
        client, marketer, f"/v1/decisions/{decision.decision_id}/explanation?lang=en"
    ).get_json()
    assert body["arm"] == "holdout" and body["coupon_code"] is None
    assert body["reason_text"].startswith("The customer is in the campaign's holdout group")
    assert body["features"][0]["name"] == "frequency_per_week"


def test_an_older_log_row_is_explained_as_far_as_it_goes(
    client: FlaskClient, marketer: str, sessions: Any, decide: Decide, features: FakeFeatures
) -> None:
    decision = _decided(sessions, decide, features)
    logged = json.loads(decision.features or "{}")
    vector = logged["candidates"][logged["chosen"]]
    with unit_of_work(sessions) as session:  # the first log format: no reason, no candidates
        session.execute(
            update(Decision)
            .where(Decision.decision_id == decision.decision_id)
            .values(features=json.dumps(vector), reason=None, candidates=None)
        )
    body = _get(
        client, marketer, f"/v1/decisions/{decision.decision_id}/explanation?lang=en"
    ).get_json()
    assert body["reason"] == "exploit" and body["candidates"] == []
    assert "candidates_not_logged" in body["notes"]
    assert body["features"][0]["name"] == "frequency_per_week"


def test_an_unknown_decision_is_a_404_problem_naming_it(client: FlaskClient, marketer: str) -> None:
    response = _get(client, marketer, f"/v1/decisions/{uuid.uuid4()}/explanation")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == [
        {"field": "decision_id", "message": "no such decision"}
    ]
    assert client.get(f"/v1/decisions/{uuid.uuid4()}/explanation").status_code == 401
    for odd in ("not-a-uuid", "%00", "x" * 300):
        assert _get(client, marketer, f"/v1/decisions/{odd}/explanation").status_code == 404


def test_a_coupon_code_finds_its_decision_however_it_is_typed(
    client: FlaskClient, marketer: str, sessions: Any, decide: Decide, features: FakeFeatures
) -> None:
    decision = _decided(sessions, decide, features)
    assert decision.coupon_code is not None
    typed = decision.coupon_code.replace("-", "").lower()
    body = _get(client, marketer, f"/v1/decisions?coupon_code={typed}").get_json()
    assert [d["decision_id"] for d in body["items"]] == [decision.decision_id]
    assert body["items"][0]["explanation"].endswith(f"{decision.decision_id}/explanation")
    bad = _get(client, marketer, "/v1/decisions?coupon_code=nonsense")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "coupon_code"
    missing = _get(client, marketer, "/v1/decisions")
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["field"] == "coupon_code"
