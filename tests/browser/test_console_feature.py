"""Step definitions for tests/features/console.feature: a marketer in a real browser.

Thin: the console's pages are driven through tests/browser/pages.py, customers and tills
through the features' World (signed webhooks, the LINE recording server, the POS feed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import Page, expect
from pytest_bdd import given, parsers, scenarios, then, when

from tests.browser.pages import (
    CampaignForm,
    Console,
    a_week_from_now,
    campaign_names,
    local_input,
)
from tests.browser.screens import Shoot
from tests.steps import test_features
from tests.steps.world import World
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

# The other features' steps (customers chatting, tills paying, campaigns made through the
# API) bound here too: pytest-bdd finds a step through the fixture it registered in the
# module that defined it. Their scenarios stay there.
globals().update(
    {name: step for name, step in vars(test_features).items() if name.startswith("pytestbdd_")}
)
scenarios("console.feature")

LIVE_TIMEOUT_MS = 60_000  # the tracker learns of a campaign and of a redemption through Kafka
DROPS_MISSING = "Drops are not available yet."
# Drops table: Status, Eligible, Decided, Coupons, Pushed, …
PUSHED_COLUMN = 4


@dataclass
class Journey:
    """What the marketer's scenario remembers between steps."""

    console: Console
    form: CampaignForm | None = None
    coupons_before: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def journey(page: Page) -> Journey:
    return Journey(Console(page))


# --- Given ------------------------------------------------------------------------------


@given("the tenin services and the console are running")
def console_running(world: World, console_url: str) -> None:
    for name, proc in world.stack.services.processes.items():
        assert proc.alive(), f"{name} is not running:\n{proc.tail()}"
    assert requests.get(f"{console_url}/healthz", timeout=5).status_code == 200


@given("the marketer has signed in to the console with a marketer key")
def signed_in(journey: Journey, marketer_key: str) -> None:
    journey.console.sign_in(marketer_key)
    expect(journey.console.heading("Campaigns")).to_be_visible()


@given(parsers.parse("{n:d} customers follow the shop's account"))
def customers_follow(world: World, journey: Journey, n: int) -> None:
    for _ in range(n):
        customer = world.new_customer()
        world.follow(customer)
        journey.coupons_before[customer.user_id] = len(set(world.coupon_codes(customer)))


# --- Plan and launch ----------------------------------------------------------------------


@when(parsers.parse('the marketer creates a campaign "{name}" that ends before it starts'))
def create_with_mistake(journey: Journey, name: str) -> None:
    journey.form = a_week_from_now(name)
    journey.form.ends_at = journey.form.starts_at - timedelta(days=1)
    journey.console.nav("New campaign")
    expect(journey.console.heading("New campaign")).to_be_visible()
    journey.console.fill_campaign(journey.form)
    journey.console.page.get_by_role("button", name="Save draft").click()


@then(parsers.parse('the console shows the mistake next to the "{label}" field and saves nothing'))
def mistake_by_the_field(journey: Journey, world: World, shoot: Shoot, label: str) -> None:
    console, page = journey.console, journey.console.page
    expect(console.heading("New campaign")).to_be_visible()
    field_input = page.get_by_label(label, exact=True)
    expect(field_input).to_have_attribute("aria-invalid", "true")
    expect(field_input).to_have_attribute("aria-describedby", re.compile(r"\berror-ends_at\b"))
    expect(console.field_error("ends_at")).to_have_text(re.compile(r"\w"))
    summary = page.get_by_role("alert")
    expect(summary.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(summary.get_by_role("link")).not_to_have_count(0)
    shoot(page, "campaign-new-error", full_page=False)  # the error, not the whole form
    assert journey.form is not None
    assert journey.form.name not in campaign_names(world.stack.marketer)


@when("the marketer moves the end to a week after the start and saves the draft")
def fix_and_save(journey: Journey, world: World) -> None:
    assert journey.form is not None
    journey.form.ends_at = journey.form.starts_at + timedelta(days=7)
    page = journey.console.page
    page.get_by_label("Ends at", exact=True).fill(local_input(journey.form.ends_at))
    page.get_by_role("button", name="Save draft").click()
    expect(journey.console.flash()).to_contain_text("Campaign saved.")
    world.campaigns.append(journey.console.campaign_id())  # ended after the scenario


@when("the marketer runs the forecast for the draft")
def run_forecast(journey: Journey) -> None:
    page = journey.console.page
    page.get_by_role("link", name="Forecast", exact=True).click()
    expect(journey.console.heading("Forecast")).to_be_visible()
    page.get_by_role("button", name="Run forecast").click()


@then(
    "the forecast shows the expected coupons, redemptions and incremental revenue with their intervals"
)
def forecast_shown(journey: Journey, shoot: Shoot) -> None:
    page = journey.console.page
    table = page.get_by_role("table", name="Forecast")
    for row_name in ("Coupons", "Redemptions", "Incremental revenue"):
        row = table.get_by_role("row").filter(has=page.get_by_text(row_name, exact=True))
        expect(row).to_have_count(1)
        # estimate, low and high: three figures beside the row's name
        expect(row.get_by_role("cell").filter(has_text=re.compile(r"\d"))).to_have_count(3)
    expect(page.get_by_text("What it rests on")).to_be_visible()
    shoot(page, "forecast")


@then(
    parsers.parse("the forecast's audience counts at least the {n:d} customers who follow the shop")
)
def forecast_audience(journey: Journey, n: int) -> None:
    term = journey.console.page.get_by_text("Eligible audience", exact=True)
    audience = term.locator("xpath=following-sibling::dd[1]").inner_text()
    assert int(audience.replace(",", "")) >= n, audience


@when("the marketer activates the campaign after confirming")
def activate(journey: Journey, world: World) -> None:
    journey.console.page.goto(f"/campaigns/{world.campaign_id}")
    journey.console.confirm("activate")
    expect(journey.console.flash()).to_contain_text("Campaign activated.")


@then("the campaign's page says it is active and shows its live report")
def live_report_shown(journey: Journey) -> None:
    console = journey.console
    expect(console.page.get_by_text("Status: active")).to_be_visible()
    live = console.page.locator("#live-report")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live.get_by_role("heading", name="Live report")).to_be_visible()
    # The tracker hears of the campaign through Kafka; the region fills in on its own.
    expect(console.figure("redeemed")).to_have_text("0", timeout=LIVE_TIMEOUT_MS)
    console.mark_loaded_page()


@then(
    parsers.parse(
        "the campaign's page shows {n:d} redemption and {money} attributed revenue without being reloaded"
    )
)
def live_redemption(journey: Journey, shoot: Shoot, n: int, money: str) -> None:
    console = journey.console
    expect(console.figure("redeemed")).to_have_text(str(n), timeout=LIVE_TIMEOUT_MS)
    expect(console.figure("attributed-revenue")).to_contain_text(money)
    console.assert_not_reloaded()
    shoot(console.page, "campaign-detail")


# --- Explain, sign out ----------------------------------------------------------------------


@when(parsers.parse('the marketer looks up the customer\'s coupon code under "{link}"'))
def look_up_code(journey: Journey, world: World, link: str) -> None:
    journey.console.nav(link)
    page = journey.console.page
    page.get_by_label("Coupon code").fill(world.codes[world.customer.user_id])
    page.get_by_role("button", name="Explain").click()


@then(
    "the console says in plain words that the customer got the offer with the highest expected value"
)
def explained(journey: Journey, shoot: Shoot) -> None:
    page = journey.console.page
    expect(page.get_by_role("heading", name="Why", exact=True)).to_be_visible()
    summary = page.locator("#explanation-summary")
    expect(summary).to_contain_text("Sent the offer with the highest expected value")
    expect(page.get_by_role("table", name="Candidates")).to_be_visible()
    shoot(page, "explanation")


@when("the marketer signs out")
def sign_out(journey: Journey) -> None:
    journey.console.sign_out()
    expect(journey.console.flash()).to_contain_text("Signed out.")


@then("the console asks the marketer to sign in again before showing the campaign")
def signed_out(journey: Journey, world: World) -> None:
    page = journey.console.page
    page.goto(f"/campaigns/{world.campaign_id}")
    expect(journey.console.heading("Sign in")).to_be_visible()
    assert "/sign-in" in page.url
    assert journey.form is not None
    expect(page.get_by_text(journey.form.name)).to_have_count(0)


# --- Drops ------------------------------------------------------------------------------------


@when("the marketer starts a drop of that campaign from its page, sending even in quiet hours")
def start_drop(journey: Journey, world: World) -> None:
    page = journey.console.page
    page.goto(f"/campaigns/{world.campaign_id}")
    drops = page.locator("#drops")
    expect(drops.get_by_role("heading", name="Drops")).to_be_visible()
    expect(drops.get_by_text(DROPS_MISSING)).to_have_count(0)  # the drops API answers
    # The default quiet hours (22:00-08:00 Tokyo) would hold the drop back at night.
    drops.get_by_label("No quiet hours").check()
    drops.get_by_role("button", name="Start drop").click()
    expect(journey.console.flash()).to_contain_text("Drop started.")
    journey.console.mark_loaded_page()


@then("the drop's progress on the campaign's page reaches all the followers without being reloaded")
def drop_progress(journey: Journey, shoot: Shoot) -> None:
    console = journey.console
    live = console.page.locator("#drops [aria-live=polite]")  # the part that refreshes
    row = live.get_by_role("table", name="Drops").get_by_role("row").last
    expect(row.get_by_role("cell", name="done", exact=True)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    progress = row.get_by_role("progressbar", name="Drop progress")
    value, maximum = progress.evaluate("p => [p.value, p.max]")
    assert maximum >= len(journey.coupons_before) and value == maximum, (value, maximum)
    pushed = row.get_by_role("cell").nth(PUSHED_COLUMN).inner_text()
    assert int(pushed.replace(",", "")) >= len(journey.coupons_before), pushed
    console.assert_not_reloaded()
    shoot(console.page, "campaign-drop")


@then(parsers.parse("each of the {n:d} customers receives one more coupon message"))
def one_more_coupon_each(journey: Journey, world: World, n: int) -> None:
    assert len(journey.coupons_before) == n
    for customer in world.customers[-n:]:
        before = journey.coupons_before[customer.user_id]
        wait_for(
            lambda c=customer, b=before: len(set(world.coupon_codes(c))) == b + 1,
            timeout=60,
            what="the drop's coupon message",
        )
