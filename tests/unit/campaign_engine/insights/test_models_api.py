"""GET /v1/models: what serves, every version's card, the gate's verdicts (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.modeling import promotion, registry
from services.campaign_engine.modeling.evaluate import Estimate
from services.campaign_engine.modeling.gate import judge
from shared.db import unit_of_work
from shared.model.scoring import read_current

CARD = {
    "data_window": {"since": "2026-10-01T00:00:00+00:00", "until": "2026-10-29T00:00:00+00:00"},
    "rows": 12_345,
    "metrics": {"auc": {"value": 0.81, "low": 0.8, "high": 0.82}},
}


def _promoted_and_refused(engine: Engine, model_dir: Path) -> tuple[str, str]:
    serving = read_current(model_dir)
    refused = "prop-20261101T000000Z-deadbeef"
    with unit_of_work(engine.sessions) as session:
        registry.register(session, "propensity", serving, {"version": serving, **CARD})
        registry.register(session, "propensity", refused, {"version": refused, "rows": 10})
        first = judge(Estimate(3.0, 2.0, 4.0, 100), None, 2.0)
        promotion.promote(
            session, model_dir, "propensity", serving, first, actor="ana", reason="first"
        )
        bad = judge(
            Estimate(1.0, -9.0, 11.0, 100),
            Estimate(3.0, 2.0, 4.0, 100),
            2.0,
            Estimate(-2.0, -6.0, 2.0, 100),
        )
        promotion.promote(session, model_dir, "propensity", refused, bad, actor="nightly")
    return serving, refused


def test_models_lists_what_serves_the_cards_and_the_gates_verdicts(
    client: FlaskClient, marketer: str, engine: Engine, model_dir: Path
) -> None:
    serving, refused = _promoted_and_refused(engine, model_dir)
    response = client.get("/v1/models", headers={"Authorization": f"Bearer {marketer}"})
    assert response.status_code == 200, response.get_json()
    kinds: dict[str, Any] = {k["kind"]: k for k in response.get_json()["kinds"]}
    assert set(kinds) == {"propensity", "uplift"}
    prop = kinds["propensity"]
    assert prop["serving"] == serving and prop["current_file"] == serving
    by_version = {v["version"]: v for v in prop["versions"]}
    assert by_version[serving]["status"] == "serving"
    assert by_version[serving]["rows"] == 12_345
    assert by_version[serving]["data_window"] == CARD["data_window"]
    assert by_version[serving]["metrics"]["auc"]["low"] == 0.8
    assert by_version[refused]["status"] == "candidate"
    refusal, promotion_ = prop["history"]  # newest first
    assert (refusal["action"], refusal["to_version"], refusal["actor"]) == (
        "refuse",
        refused,
        "nightly",
    )
    assert refusal["from_version"] == serving and "is below" in refusal["reason"]
    assert refusal["estimates"]["difference_dr"]["low"] == -6.0
    assert (promotion_["action"], promotion_["actor"]) == ("promote", "ana")
    assert promotion_["reason"].startswith("first; gate: no model serves yet")
    assert kinds["uplift"]["versions"] == [] and kinds["uplift"]["history"] == []


def test_models_needs_a_marketer_key(client: FlaskClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_models_is_in_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert "get" in spec["paths"]["/v1/models"]
