"""The pages the feature does not pass through, at desktop and phone width, with their
screenshots (tests/browser/screens.py says where they go)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import Console, open_context
from tests.browser.screens import Shoot
from tests.steps.world import World

pytestmark = pytest.mark.e2e

PHONE_WIDTH, PHONE_HEIGHT = 390, 844  # a common phone, in CSS pixels
Shoot = Shoot


@pytest.fixture
def phone(chromium: Browser, console_url: str) -> Iterator[Page]:
    """A page in a fresh profile at phone width."""
    context = open_context(chromium, console_url, PHONE_WIDTH, PHONE_HEIGHT)
    yield context.new_page()
    context.close()


def assert_fits_width(page: Page) -> None:
    """Nothing makes the whole page scroll sideways (a wide table may scroll in its box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def test_campaigns_and_model_pages(
    page: Page, marketer_key: str, world: World, shoot: Shoot
) -> None:
    world.create_active_campaign("Rice ball Monday", 10.0)
    console = Console(page)
    console.sign_in(marketer_key)
    expect(console.heading("Campaigns")).to_be_visible()
    table = page.get_by_role("table", name="Campaigns")
    row = table.get_by_role("row").filter(has_text="Rice ball Monday")
    expect(row.get_by_role("link", name="Rice ball Monday")).to_be_visible()
    expect(row.get_by_role("cell", name="active", exact=True)).to_be_visible()
    shoot(page, "campaigns")

    console.nav("Model")
    expect(console.heading("Model")).to_be_visible()
    for section in ("Serving", "Candidates", "Gate verdicts"):
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    shoot(page, "model")


def test_pages_fit_a_phone(phone: Page, marketer_key: str, world: World, shoot: Shoot) -> None:
    campaign_id = world.create_active_campaign("Phone-sized", 10.0)
    console = Console(phone)
    console.sign_in(marketer_key)
    expect(console.heading("Campaigns")).to_be_visible()
    assert_fits_width(phone)
    shoot(phone, "phone-campaigns")
    phone.goto(f"/campaigns/{campaign_id}")
    expect(phone.locator("#live-report")).to_be_visible()
    assert_fits_width(phone)
    shoot(phone, "phone-campaign-detail")
    phone.goto("/campaigns/new")
    expect(console.heading("New campaign")).to_be_visible()
    assert_fits_width(phone)


def test_the_language_switch_keeps_the_page(page: Page, marketer_key: str, shoot: Shoot) -> None:
    console = Console(page)
    console.sign_in(marketer_key)
    expect(console.heading("Campaigns")).to_be_visible()
    page.get_by_role("link", name="日本語").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    assert page.url.endswith("/campaigns"), page.url
    expect(console.heading("Campaigns")).to_have_count(0)
    shoot(page, "campaigns-ja")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(console.heading("Campaigns")).to_be_visible()
