"""Steps of the till-clock scenarios in tests/features/till_rules.feature.

Imported into test_features.py with `*`, like account_link_steps.py: pytest-bdd binds a
step where it is imported.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from pytest_bdd import parsers, then, when

from shared.coupons import CouponClaims, coupon_key, issue_code, round_up_to_hour
from tests.steps.world import World


@when(
    parsers.parse(
        "a customer presents a code that expired {expired:d} days ago at store {store}, "
        "the sale dated {dated:d} days ago"
    )
)
def backdated(world: World, expired: int, store: str, dated: int) -> None:
    campaign = world.stack.marketer.campaign(world.campaign_id).json()
    now = datetime.now(UTC)
    claims = CouponClaims(
        campaign_no=campaign["number"],
        offer_index=0,
        serial=998_000 + expired,
        expires_at=round_up_to_hour(now - timedelta(days=expired)),
    )
    code = issue_code(coupon_key(world.stack.secret_key), claims)
    sale = world.transaction(store, 800, [code], None)
    sale["occurred_at"] = (now - timedelta(days=dated)).isoformat()
    world.pay(store, [sale])


@when(parsers.parse("store {store} reports a sale dated {hours:d} hour from now"))
def future_sale(world: World, store: str, hours: int) -> None:
    sale = world.transaction(store, 700, [], None)
    sale["occurred_at"] = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    world.pay(store, [sale])


@when(parsers.parse("store {store} records a sale of {total:d} yen without a coupon"))
def plain_sale(world: World, store: str, total: int) -> None:
    [result] = world.pay(store, [world.transaction(store, total, [], None)])
    assert result["status"] == "accepted", result


@then(parsers.parse('the till rejects that transaction, naming "{field}"'))
def transaction_rejected(world: World, field: str) -> None:
    result = world.results[-1]
    assert result["status"] == "rejected", result
    assert [e["field"] for e in result["errors"]] == [field], result


@when("the store voids that transaction with a time before the sale", target_fixture="void_answer")
def void_before_sale(world: World) -> requests.Response:
    sale = world.transactions[-1]
    store = sale["transaction_id"].split("-")[0]
    before = datetime.fromisoformat(sale["occurred_at"]) - timedelta(minutes=10)
    return world.stack.tills[store].void(sale["transaction_id"], before.isoformat())


@then(parsers.parse('the void is refused, naming "{field}"'))
def void_refused(void_answer: requests.Response, field: str) -> None:
    assert void_answer.status_code == 422, void_answer.text
    assert void_answer.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in void_answer.json()["errors"]] == [field]
