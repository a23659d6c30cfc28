"""Steps of tests/features/account_link.feature (the World does the work).

Imported into test_features.py with `*`: pytest-bdd registers each step as a fixture in
the module that defines it, and the scenarios are bound there.
"""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

from pytest_bdd import parsers, then, when

from tests.steps.world import World
from tests.support.waiting import holds_for

# A real-looking member number per card named in a scenario, fresh for each run: cards
# from earlier runs stay linked in the database.
_CARDS: dict[str, str] = {}


def _card(name: str) -> str:
    return _CARDS.setdefault(name, f"M{random.randint(10**8, 10**9 - 1)}")


@when("the customer asks to link their loyalty card", target_fixture="link_token")
def asks_to_link(world: World) -> str:
    return world.ask_to_link(world.customer)


@then("the customer receives a link to the member site")
def receives_member_site_link(world: World, link_token: str) -> None:
    assert world.stack.line.link_tokens[link_token] == world.customer.user_id


@when(
    parsers.parse(
        'the member site signs the customer in as the holder of card "{member}" and asks for a nonce'
    ),
    target_fixture="issued",
)
def member_site_nonce(world: World, link_token: str, member: str) -> dict[str, str]:
    world.customer.member_id = _card(member)
    return world.link_nonce(world.customer.member_id, link_token)


@then("the member site gets a redirect to LINE's account-link dialog")
def redirect_to_dialog(issued: dict[str, str], link_token: str) -> None:
    url = urlsplit(issued["redirect_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        "https://access.line.me/dialog/bot/accountLink"
    )
    assert parse_qs(url.query) == {"linkToken": [link_token], "nonce": [issued["nonce"]]}


@when("the platform reports that the customer completed the account link")
def platform_account_link(world: World, issued: dict[str, str]) -> None:
    world.account_link(world.customer, issued["nonce"])


@then("the customer is told their card is linked")
def told_linked(world: World) -> None:
    from tests.steps.test_features import looks_like, persona_lines

    last = world.stack.line.delivered_to(world.customer.user_id)[-1]
    assert any(looks_like(t, persona_lines("linked")) for t in last.texts())


@when(parsers.parse('the customer types the member number of card "{member}"'))
def types_member_number(world: World, member: str) -> None:
    world.send(world.customer, "message", text=f"会員番号は{_card(member)}です")
    world.wait_for_answer(world.customer)


@then("the customer is told to sign in on the member site instead")
def told_to_sign_in(world: World) -> None:
    from tests.steps.test_features import looks_like, persona_lines

    texts = world.stack.line.delivered_to(world.customer.user_id)[-1].texts()
    assert any(looks_like(t, persona_lines("link_by_number")) for t in texts)
    assert any("linkToken=" in t for t in texts)


@when(parsers.parse('card "{member}" is used for {total:d} yen at store {store}'))
def card_used(world: World, member: str, total: int, store: str) -> None:
    world.pay(store, [world.transaction(store, total, [], _card(member))])


@then("the campaign report counts no holdout spend")
def no_holdout_spend(world: World) -> None:
    world.report_when(lambda r: r["counts"]["decisions"] >= 1, "the customer's holdout decision")
    holds_for(
        lambda: world.report()["lift"]["holdout_customers"] == 0,
        seconds=3,
        what="the card's spend not counted for the customer who typed its number",
    )
