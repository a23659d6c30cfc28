"""Rate limits per API key and per store on the tracker's API (docs/interfaces.md § Rate limits).

The app is the served one (`create_app`); only the bucket sizes are made small.
"""

from __future__ import annotations

from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from shared.auth import RATE_LIMITS, install_rate_limits
from shared.embedded import free_port
from shared.ratelimit import Limits, RateLimiter
from shared.redis_client import make_redis
from tests.support.redemption_tracker.builders import keys, uid

SMALL = {"TENIN_RATE_LIMIT_KEY_POS": "0.2/3", "TENIN_RATE_LIMIT_STORE": "0.2/5"}


def small_limits_client(tracker: Tracker) -> FlaskClient:
    app = create_app(tracker=tracker)
    assert RATE_LIMITS in app.extensions  # the served app limits without help
    install_rate_limits(app, RateLimiter(None, uid("ns")), Limits.from_env(SMALL))
    return app.test_client()


def precheck(client: FlaskClient, authorization: str) -> int:
    return client.get("/v1/coupons/NOCODE", headers={"Authorization": authorization}).status_code


def test_a_key_past_its_burst_gets_429_problem_json_with_retry_after(tracker: Tracker) -> None:
    client = small_limits_client(tracker)
    pos = keys(tracker, uid("S"))["pos"]
    assert [precheck(client, pos) for _ in range(3)] == [200, 200, 200]
    refused = client.get("/v1/coupons/NOCODE", headers={"Authorization": pos})
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    body = refused.get_json()
    assert body["status"] == 429 and "API key" in body["detail"]


def test_each_key_has_its_own_bucket(tracker: Tracker) -> None:
    client = small_limits_client(tracker)
    first, second = keys(tracker, uid("S")), keys(tracker, uid("S"))
    assert [precheck(client, first["pos"]) for _ in range(4)][-1] == 429
    assert precheck(client, second["pos"]) == 200
    assert precheck(client, first["other"]) == 200  # another store's key


def test_the_keys_of_one_store_share_its_store_bucket(tracker: Tracker) -> None:
    client = small_limits_client(tracker)
    store = uid("S")
    till_a, till_b = keys(tracker, store)["pos"], keys(tracker, store)["pos"]
    answers = [precheck(client, till) for till in (till_a, till_b) * 3]
    assert answers == [200, 200, 200, 200, 200, 429]


def test_with_redis_down_tills_are_not_limited(tracker: Tracker) -> None:
    app = create_app(tracker=tracker)
    dead = make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    install_rate_limits(app, RateLimiter(dead, uid("ns")), Limits.from_env(SMALL))
    client = app.test_client()
    pos = keys(tracker, uid("S"))["pos"]
    assert [precheck(client, pos) for _ in range(6)] == [200] * 6  # burst is 3: open


def test_the_openapi_document_declares_429_with_retry_after_on_keyed_routes(
    tracker: Tracker,
) -> None:
    paths = create_app(tracker=tracker).test_client().get("/openapi.json").get_json()["paths"]
    too_many = paths["/v1/pos/transactions"]["post"]["responses"]["429"]
    assert too_many["headers"]["Retry-After"]["required"] is True
    assert "application/problem+json" in too_many["content"]
    assert "429" not in paths["/healthz"]["get"]["responses"]  # no key, no bucket
