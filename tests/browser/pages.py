"""What a marketer does on the console's pages, through accessible names only (labels,
roles, headings, as docs/console.md lists them), so a page that loses a label fails here
as it would fail a screen-reader user."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tenin.clients import MarketerClient

RETAILER_ZONE = ZoneInfo("Asia/Tokyo")
CAMPAIGN_PATH = re.compile(r"/campaigns/([0-9a-f-]{36})(?:[/?#]|$)")
# Survives htmx swaps, not a page load: still there later proves the page was not reloaded.
NO_RELOAD_MARK = "window.__teninNoReload"


DESKTOP_WIDTH, DESKTOP_HEIGHT = 1280, 800


def open_context(
    browser: Browser, base_url: str, width: int = DESKTOP_WIDTH, height: int = DESKTOP_HEIGHT
) -> BrowserContext:
    """A fresh browser profile (no cookies) reading English, in the retailer's time zone."""
    context = browser.new_context(
        base_url=base_url,
        locale="en-US",
        timezone_id="Asia/Tokyo",
        viewport={"width": width, "height": height},
        is_mobile=width < 600,
        has_touch=width < 600,
    )
    context.set_default_timeout(20_000)
    return context


def local_input(moment: datetime) -> str:
    """A `datetime-local` value in the retailer's time zone (minutes)."""
    return moment.astimezone(RETAILER_ZONE).strftime("%Y-%m-%dT%H:%M")


@dataclass
class CampaignForm:
    """The values a marketer types into the campaign form (one offer)."""

    name: str
    starts_at: datetime
    ends_at: datetime
    holdout_pct: str = "0"
    revenue_share_pct: str = "10"
    per_call_fee: str = "3"
    max_coupons: str = "100"
    per_customer_per_day: str = "10"
    offer_title: str = "¥50 off onigiri"
    discount_value: str = "50"
    categories: str = "onigiri"
    min_basket: str = "300"
    valid_hours: str = "72"

    def by_label(self) -> dict[str, str]:
        """Campaign-level fields by their label."""
        return {
            "Name": self.name,
            "Starts at": local_input(self.starts_at),
            "Ends at": local_input(self.ends_at),
            "Holdout %": self.holdout_pct,
            "Revenue share %": self.revenue_share_pct,
            "Per-call fee (¥)": self.per_call_fee,
            "Max coupons": self.max_coupons,
            "Per customer per day": self.per_customer_per_day,
        }

    def offer_by_label(self) -> dict[str, str]:
        """The first offer's text fields by their label."""
        return {
            "Title": self.offer_title,
            "Discount value": self.discount_value,
            "Categories or SKUs": self.categories,
            "Minimum basket (¥)": self.min_basket,
            "Valid hours": self.valid_hours,
        }


def a_week_from_now(name: str) -> CampaignForm:
    """A campaign that started a few minutes ago and runs for a week."""
    now = datetime.now(RETAILER_ZONE).replace(second=0, microsecond=0)
    return CampaignForm(name, now - timedelta(minutes=5), now + timedelta(days=7))


@dataclass
class Console:
    """One marketer's browser tab on the console."""

    page: Page

    def heading(self, name: str) -> Locator:
        return self.page.get_by_role("heading", level=1, name=name)

    def sign_in(self, key: str) -> None:
        self.page.goto("/sign-in")
        self.page.get_by_label("Marketer key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.heading("Sign in")).to_be_visible()

    def nav(self, link: str) -> None:
        self.page.get_by_role("navigation").get_by_role("link", name=link).click()

    def fill_campaign(self, form: CampaignForm) -> None:
        for label, value in form.by_label().items():
            self.page.get_by_label(label, exact=True).fill(value)
        self.page.get_by_label("Revenue share basis").select_option("attributed")
        offer = self.page.get_by_role("group", name="Offer 1")
        for label, value in form.offer_by_label().items():
            offer.get_by_label(label, exact=True).fill(value)
        offer.get_by_label("Discount type").select_option("amount")
        offer.get_by_label("Applies to", exact=True).select_option("categories")

    def field_error(self, field: str) -> Locator:
        """The error shown next to a form field (`name` = the API's dotted path)."""
        return self.page.locator(f"#error-{field.replace('.', '-')}")

    def campaign_id(self) -> str:
        """The campaign whose page is open."""
        match = CAMPAIGN_PATH.search(self.page.url)
        assert match, f"not a campaign page: {self.page.url}"
        return match.group(1)

    def confirm(self, action: str) -> None:
        """A lifecycle link, then its confirmation page's button."""
        self.page.get_by_role("link", name=action.capitalize(), exact=True).click()
        expect(self.heading(f"{action.capitalize()} campaign?")).to_be_visible()
        self.page.get_by_role("button", name=f"Yes, {action}").click()

    def figure(self, name: str) -> Locator:
        """A figure of the live report (`issued`, `redeemed`, `attributed-revenue`, …)."""
        return self.page.locator(f"#live-report #figure-{name}")

    def mark_loaded_page(self) -> None:
        self.page.evaluate(f"{NO_RELOAD_MARK} = true")

    def assert_not_reloaded(self) -> None:
        assert self.page.evaluate(f"{NO_RELOAD_MARK} === true"), "the page was reloaded"

    def flash(self) -> Locator:
        return self.page.locator("#flash")


def campaign_names(marketer: MarketerClient) -> list[str]:
    """Every campaign's name, through the marketer API: what the console really saved."""
    response = marketer.http.get(f"{marketer.engine}/v1/campaigns?limit=200", timeout=10)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]
