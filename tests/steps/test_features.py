"""Step definitions for tests/features/*.feature — thin: the World does the work."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from pytest_bdd import given, parsers, scenarios, then, when

from shared.coupons import CouponClaims, coupon_key, issue_code, round_up_to_hour
from tests.steps.account_link_steps import *  # noqa: F403 - its step fixtures, bound here
from tests.steps.drop_steps import *  # noqa: F403 - its step fixtures, bound here
from tests.steps.till_time_steps import *  # noqa: F403 - its step fixtures, bound here
from tests.steps.world import World
from tests.support.waiting import holds_for, wait_for

pytestmark = pytest.mark.e2e

scenarios(
    "coupon_journey.feature",
    "holdout_and_consent.feature",
    "till_rules.feature",
    "budget_and_recovery.feature",
    "account_link.feature",
    "drop.feature",
)

PERSONA = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "services/chat_agent/persona/tenin.yaml").read_text(
        "utf-8"
    )
)


def persona_lines(kind: str) -> list[str]:
    """Every variant of a persona line, in every language and tone (placeholders unfilled)."""
    out = []
    for by_tone in PERSONA["messages"][kind].values():
        for variants in by_tone.values():
            out.extend(variants)
    return out


def looks_like(text: str, templates: list[str]) -> bool:
    """True when `text` is one of the templates with its placeholders filled in."""
    import re

    for template in templates:
        pattern = re.escape(template)
        pattern = re.sub(r"\\\{[a-z_]+\\\}", ".+?", pattern)
        if re.fullmatch(pattern, text.strip(), flags=re.S):
            return True
    return False


# --- Given ------------------------------------------------------------------------------


@given("the three tenin services are running on Kafka, PostgreSQL and Redis")
def services_running(world: World) -> None:
    for name, proc in world.stack.services.processes.items():
        assert proc.alive(), f"{name} is not running:\n{proc.tail()}"


@given(
    parsers.re(
        r'a marketer has created and activated a campaign "(?P<name>[^"]+)" with a (?P<pct>\d+)% holdout and a budget of (?P<n>\d+) coupons'
    )
)
def campaign_with_budget(world: World, name: str, pct: str, n: str) -> None:
    world.create_active_campaign(name, float(pct), max_coupons=int(n))


@given(
    parsers.re(
        r'a marketer has created and activated a campaign "(?P<name>[^"]+)" with a (?P<pct>\d+)% holdout$'
    )
)
def campaign(world: World, name: str, pct: str) -> None:
    world.create_active_campaign(name, float(pct))


# --- When: chat -------------------------------------------------------------------------


@when("a customer follows the shop's account")
def follows(world: World) -> None:
    world.follow(world.new_customer())


@when("a customer with a linked loyalty card follows the shop's account")
def follows_linked(world: World) -> None:
    world.follow(world.new_customer(linked=True))


@when(parsers.parse('the customer asks "{text}"'))
@when(parsers.parse('the customer says "{text}"'))
def says(world: World, text: str) -> None:
    world.send(world.customer, "message", text=text)
    world.wait_for_answer(world.customer)


@when(parsers.parse("the customer asks for deals in a webhook that LINE delivers {n:d} times"))
def redelivered_ask(world: World, n: int) -> None:
    world.send(world.customer, "message", text="クーポンほしい", times=n)


def _follow_and_ask(world: World, n: int) -> None:
    customers = [world.new_customer() for _ in range(n)]

    def one(customer):  # type: ignore[no-untyped-def]
        world.follow(customer)
        world.send(customer, "message", text="coupon please")
        world.wait_for_answer(customer)

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, customers))


@when(parsers.parse("{n:d} customers follow the shop's account and ask for deals"))
def many_follow(world: World, n: int) -> None:
    _follow_and_ask(world, n)


@when(
    parsers.parse(
        "{n:d} customers follow the shop's account and ask for deals while the campaign engine's worker is killed and restarted"
    )
)
def many_follow_with_crash(world: World, n: int) -> None:
    worker = world.stack.services.processes["campaign_engine.worker"]
    chatting = threading.Thread(target=_follow_and_ask, args=(world, n))
    chatting.start()
    wait_for(
        lambda: world.customers and world.stack.line.delivered_to(world.customers[0].user_id),
        timeout=60,
        what="the first answer",
    )
    worker.kill()
    world.stack.services.restart("campaign_engine.worker")
    chatting.join(timeout=180)
    assert not chatting.is_alive()


# --- Then: chat -------------------------------------------------------------------------


@then("the customer receives a coupon message whose QR image decodes to the code")
def coupon_message(world: World) -> None:
    code = world.wait_for_coupon(world.customer)
    assert world.qr_decodes_to_code(code) == code
    texts = [t for d in world.stack.line.delivered_to(world.customer.user_id) for t in d.texts()]
    assert any(code in t for t in texts), "the coupon text carries the code"


@then("the customer receives a kind message without a coupon")
def kind_message(world: World) -> None:
    answers = world.wait_for_answer(world.customer)
    assert any(d.texts() for d in answers)
    assert world.coupon_codes(world.customer) == []


@then("the customer receives no coupon")
def no_coupon(world: World) -> None:
    world.wait_for_answer(world.customer)
    holds_for(
        lambda: len(set(world.coupon_codes(world.customer))) == world.coupons_before,
        seconds=3,
        what="no new coupon",
    )


@then(parsers.parse("that request gives the customer exactly {n:d} coupon"))
def exactly_coupons_for_request(world: World, n: int) -> None:
    expected = world.coupons_before + n
    wait_for(
        lambda: len(set(world.coupon_codes(world.customer))) >= expected,
        timeout=60,
        what="the coupon for the request",
    )
    world.codes[world.customer.user_id] = world.coupon_codes(world.customer)[-1]
    world.report_when(lambda r: r["counts"]["issued"] >= expected, "issued coupons")
    holds_for(
        lambda: (
            len(set(world.coupon_codes(world.customer))) == expected
            and world.report()["counts"]["issued"] == expected
        ),
        seconds=3,
        what=f"exactly {n} coupon for the redelivered request",
    )


@then(parsers.parse("exactly {n:d} coupons are issued"))
def exactly_coupons(world: World, n: int) -> None:
    report = world.report_when(lambda r: r["counts"]["issued"] >= n, "issued coupons")
    codes = {code for c in world.customers for code in world.coupon_codes(c)}
    assert len(codes) == n
    assert report["counts"]["issued"] == n


@then("every customer has a coupon, and every coupon issued was delivered exactly once")
def all_delivered_once(world: World) -> None:
    # A killed worker's partitions wait out its session timeout before the restarted one
    # takes them over, so these waits are longer than the others.
    for customer in world.customers:
        wait_for(lambda c=customer: world.coupon_codes(c), timeout=150, what="a coupon")
    codes = [code for c in world.customers for code in world.coupon_codes(c)]
    assert len(codes) == len(set(codes)), "no coupon message was delivered twice"
    world.report_when(lambda r: r["counts"]["delivered"] >= len(codes), "deliveries", timeout=120)

    def agree() -> bool:
        counts = world.report()["counts"]
        held = {code for c in world.customers for code in world.coupon_codes(c)}
        return counts["issued"] == counts["delivered"] == len(held)

    holds_for(agree, seconds=3, what="issued == delivered == the codes the customers hold")


@then("the other customers hear that today's coupons are gone")
def budget_gone(world: World) -> None:
    templates = persona_lines("budget_exhausted")
    without = [c for c in world.customers if not world.coupon_codes(c)]
    assert without
    for customer in without:
        texts = [t for d in world.stack.line.delivered_to(customer.user_id) for t in d.texts()]
        assert any(looks_like(t, templates) for t in texts), texts


@then("the customer is thanked for using the coupon")
def thanked(world: World) -> None:
    templates = persona_lines("thanks_after_redemption")
    wait_for(
        lambda: any(
            looks_like(t, templates)
            for d in world.stack.line.delivered_to(world.customer.user_id)
            for t in d.texts()
        ),
        timeout=60,
        what="a thank-you message",
    )


# --- When / Then: tills -----------------------------------------------------------------


@when(parsers.parse("the customer pays {total:d} yen at store {store} with that coupon"))
def pays_with_coupon(world: World, total: int, store: str) -> None:
    code = world.codes[world.customer.user_id]
    world.pay(store, [world.transaction(store, total, [code], world.customer.member_id)])


@when(parsers.parse("the customer spends {total:d} yen at store {store} without a coupon"))
def spends(world: World, total: int, store: str) -> None:
    world.pay(store, [world.transaction(store, total, [], world.customer.member_id)])


@when("the store re-sends the same transaction")
def resend(world: World) -> None:
    store = world.transactions[-1]["transaction_id"].split("-")[0]
    world.pay(store, [world.transactions[-1]])


@when(parsers.parse("a customer presents a forged code at store {store}"))
def forged(world: World, store: str) -> None:
    claims = CouponClaims(
        campaign_no=1,
        offer_index=0,
        serial=42,
        expires_at=round_up_to_hour(
            __import__("datetime").datetime.now(__import__("datetime").UTC)
        ),
    )
    code = issue_code(coupon_key("not-the-server-secret"), claims)
    world.pay(store, [world.transaction(store, 800, [code], None)])


@when(parsers.parse("a customer presents an expired code at store {store}"))
def expired(world: World, store: str) -> None:
    from datetime import UTC, datetime, timedelta

    campaign = world.stack.marketer.campaign(world.campaign_id).json()
    claims = CouponClaims(
        campaign_no=campaign["number"],
        offer_index=0,
        serial=999_000,
        expires_at=round_up_to_hour(datetime.now(UTC) - timedelta(hours=3)),
    )
    code = issue_code(coupon_key(world.stack.secret_key), claims)
    world.pay(store, [world.transaction(store, 800, [code], None)])


@then("the till accepts the coupon")
def till_accepts(world: World) -> None:
    result = world.results[-1]
    assert result["status"] == "accepted", result
    assert [c["status"] for c in result["coupons"]] == ["redeemed"], result


@then(parsers.parse('the till refuses the code because it is "{reason}"'))
def till_refuses(world: World, reason: str) -> None:
    coupon = world.results[-1]["coupons"][0]
    assert coupon["status"] == "rejected" and coupon["reason"] == reason, coupon


@then("the re-sent transaction is reported as a duplicate")
def duplicate(world: World) -> None:
    first, again = world.results[-2], world.results[-1]
    assert again["status"] == "duplicate"
    assert again["coupons"] == first["coupons"]


@when("the same code is presented at two tills at once")
def two_tills(world: World) -> None:
    code = world.codes[world.customer.user_id]
    txs = [
        ("S001", world.transaction("S001", 900, [code], None)),
        ("S002", world.transaction("S002", 900, [code], None)),
    ]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda st: world.pay(st[0], [st[1]]), txs))


@then("neither till redeems it again")
def not_again(world: World) -> None:
    last_two = world.results[-2:]
    assert all(
        c["status"] == "rejected" and c["reason"] == "already_redeemed"
        for r in last_two
        for c in r["coupons"]
    ), last_two
    assert world.report()["counts"]["redeemed"] == 1


@when("the store voids that transaction")
def void(world: World) -> None:
    tx = world.transactions[-1]
    store = tx["transaction_id"].split("-")[0]
    response = world.stack.tills[store].void(tx["transaction_id"], tx["occurred_at"])
    assert response.status_code == 200, response.text


@then("the coupon can be used again")
def usable_again(world: World) -> None:
    code = world.codes[world.customer.user_id]
    precheck = world.stack.tills["S001"].precheck(code).json()
    assert precheck["valid"] is True, precheck
    results = world.pay("S001", [world.transaction("S001", 1000, [code], None)])
    assert results[0]["coupons"][0]["status"] == "redeemed"


@when(
    "they all pay with their coupons while the redemption tracker's worker is killed and restarted"
)
def all_pay_with_crash(world: World) -> None:
    worker = world.stack.services.processes["redemption_tracker.worker"]
    codes = [code for c in world.customers for code in sorted(set(world.coupon_codes(c)))]
    half = len(codes) // 2
    for code in codes[:half]:
        world.pay("S001", [world.transaction("S001", 800, [code], None)])
    worker.kill()
    for code in codes[half:]:
        world.pay("S002", [world.transaction("S002", 800, [code], None)])
    world.stack.services.restart("redemption_tracker.worker")


# --- Then: report -----------------------------------------------------------------------


@then(
    parsers.parse(
        "the campaign report shows {n:d} redemption, {revenue:d} yen attributed revenue and the revenue share owed"
    )
)
def report_redemption(world: World, n: int, revenue: int) -> None:
    r = world.report_when(lambda r: r["counts"]["redeemed"] == n, "the redemption in the report")
    assert r["money"]["attributed_revenue"] == revenue
    assert r["revenue_share"]["owed"] == revenue * 10 // 100
    assert r["per_call_fee"]["would_have_earned"] == 3 * r["per_call_fee"]["decisions"]


@then(parsers.parse("the campaign report shows {n:d} redemption"))
def report_n(world: World, n: int) -> None:
    world.report_when(lambda r: r["counts"]["redeemed"] == n, f"{n} redemption")


@then(
    parsers.parse(
        "the campaign report shows {n:d} redemptions and {revenue:d} yen attributed revenue"
    )
)
def report_after_void(world: World, n: int, revenue: int) -> None:
    r = world.report_when(lambda r: r["counts"]["redeemed"] == n, f"{n} redemptions")
    assert r["money"]["attributed_revenue"] == revenue
    assert r["counts"]["voided"] >= 1


@then("the campaign report counts each of those coupons issued once and redeemed once")
def report_each_once(world: World) -> None:
    codes = {code for c in world.customers for code in world.coupon_codes(c)}
    paid = world.results[-len(codes) :]
    assert all(r["coupons"][0]["status"] == "redeemed" for r in paid), paid
    r = world.report_when(
        lambda r: r["counts"]["redeemed"] == len(codes), "redemptions", timeout=120
    )
    holds_for(
        lambda: world.report()["counts"]["redeemed"] == len(codes),
        seconds=3,
        what="no redemption counted twice",
    )
    assert r["counts"]["issued"] == len(codes)


@then(parsers.parse("this month's statement for the campaign adds up to {total:d} yen"))
def statement(world: World, total: int) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    # Statement months are the stores' months (Japan time), not UTC's.
    period = datetime.now(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    response = world.stack.marketer.statements(world.campaign_id, period)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"]["revenue_share"] == total
    assert len(body["lines"]) >= 1, "the redemption and its void both leave ledger lines"


@then(parsers.parse("the campaign report counts {spend:d} yen of holdout spend"))
def holdout_spend(world: World, spend: int) -> None:
    r = world.report_when(
        lambda r: (
            (r["lift"].get("holdout_mean_spend") or 0) * r["lift"]["holdout_customers"] >= spend
        ),
        "holdout spend",
    )
    assert r["lift"]["holdout_customers"] == 1
    assert r["lift"]["holdout_mean_spend"] == spend
