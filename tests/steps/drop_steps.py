"""Steps of the campaign drop scenario in tests/features/drop.feature (docs/interfaces.md
§ Campaign drops).

Imported into test_features.py with `*`, like account_link_steps.py: pytest-bdd binds a
step where it is imported.
"""

from __future__ import annotations

from typing import Any

from pytest_bdd import parsers, then, when

from tests.steps.world import World
from tests.support.waiting import holds_for, wait_for


def _drops(world: World) -> str:
    return f"{world.stack.marketer.engine}/v1/campaigns/{world.campaign_id}/drops"


def _coupons_now(world: World) -> dict[str, int]:
    return {c.user_id: len(world.coupon_codes(c)) for c in world.customers}


@when(parsers.parse("{n:d} customers follow the shop's account"))
def followers(world: World, n: int) -> None:
    for _ in range(n):
        world.follow(world.new_customer())


@when("the marketer asks for a dry run of a drop to the campaign's followers")
def dry_run(world: World) -> None:
    world.deliveries_before = {
        c.user_id: len(world.stack.line.delivered_to(c.user_id)) for c in world.customers
    }
    answer = world.stack.marketer.http.post(
        _drops(world), json={"dry_run": True, "quiet_hours": None}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    world.results.append(answer.json())


@then("the estimate counts at least those 3 followers and nobody receives anything")
def estimate_only(world: World) -> None:
    estimate = world.results[-1]
    assert estimate["eligible"] >= 3 and estimate["expected_coupons"] >= 3
    holds_for(
        lambda: all(
            len(world.stack.line.delivered_to(c.user_id)) == world.deliveries_before[c.user_id]
            for c in world.customers
        ),
        seconds=3,
        what="no message after a dry run",
    )


@when("the marketer drops the campaign to its followers, with no quiet hours")
def drop(world: World) -> None:
    world.results.append({"coupons_before": _coupons_now(world)})
    answer = world.stack.marketer.http.post(_drops(world), json={"quiet_hours": None}, timeout=30)
    assert answer.status_code == 202, answer.text
    world.results.append(answer.json())


@then("the drop finishes, and each of the 3 followers was pushed exactly one more coupon")
def finished(world: World) -> None:
    path = f"{_drops(world)}/{world.results[-1]['drop_id']}"

    def done() -> dict[str, Any] | None:
        progress: dict[str, Any] = world.stack.marketer.http.get(path, timeout=10).json()
        return progress if progress["status"] == "done" else None

    world.results.append(wait_for(done, timeout=120, what="the drop done"))
    before: dict[str, int] = world.results[-3]["coupons_before"]
    expected = {user: n + 1 for user, n in before.items()}
    assert _coupons_now(world) == expected
    holds_for(lambda: _coupons_now(world) == expected, seconds=2, what="no second message")


@then("the drop's report compares the messages sent with a broadcast to everyone")
def drop_report(world: World) -> None:
    progress = world.results[-1]
    report = progress["report"]
    assert report["messages_sent"] == progress["pushed"] >= 3
    assert report["broadcast_messages"] == progress["eligible"]
    assert report["messages_saved"] == progress["eligible"] - progress["pushed"]
