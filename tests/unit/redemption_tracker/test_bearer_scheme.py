"""The Authorization scheme is case-insensitive (RFC 9110 § 11.1; docs/interfaces.md § Conventions)."""

from __future__ import annotations

from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from tests.support.redemption_tracker.builders import keys, uid


def precheck(client: FlaskClient, authorization: str) -> int:
    return client.get("/v1/coupons/NOCODE", headers={"Authorization": authorization}).status_code


def test_a_lowercase_bearer_scheme_is_accepted(tracker: Tracker) -> None:
    client = create_app(tracker=tracker).test_client()
    key = keys(tracker, uid("S"))["pos"].removeprefix("Bearer ")
    assert precheck(client, f"bearer {key}") == 200
    assert precheck(client, f"BEARER {key}") == 200
    assert precheck(client, f"Basic {key}") == 401
    assert precheck(client, "bearer ") == 401


def test_a_401_names_the_scheme_it_wants(tracker: Tracker) -> None:
    client = create_app(tracker=tracker).test_client()
    for authorization in ("", "Basic abc", "Bearer tn_unknown_key"):
        answer = client.get("/v1/coupons/NOCODE", headers={"Authorization": authorization})
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
