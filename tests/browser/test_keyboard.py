"""The sign-in and campaign forms completed with the keyboard alone: Tab to each control,
type, Enter; no click, no `fill` (docs/console.md, accessibility)."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import Console, a_week_from_now
from tests.steps.world import World

pytestmark = pytest.mark.e2e

MAX_TABS = 120  # more stops than any form has: a control never reached fails the test

FOCUSED = """() => {
  const e = document.activeElement;
  return [e.tagName, e.getAttribute('name') || '', (e.textContent || '').trim(),
          getComputedStyle(e).outlineStyle !== 'none' || getComputedStyle(e).boxShadow !== 'none'];
}"""


def tab_to(page: Page, *, name: str | None = None, text: str | None = None) -> bool:
    """Press Tab until the control named `name` (or showing `text`) has the focus.

    Returns whether the focused control shows a focus style (outline or box shadow)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        _tag, focused_name, focused_text, styled = page.evaluate(FOCUSED)
        if (name is not None and focused_name == name) or (
            text is not None and focused_text == text
        ):
            return bool(styled)
    raise AssertionError(f"Tab never reached {name or text!r}")


def type_into(page: Page, name: str, value: str) -> None:
    """Tab to a text or number field, clear it and type."""
    tab_to(page, name=name)
    page.keyboard.press("Control+a")
    page.keyboard.type(value)


def type_datetime(page: Page, name: str, moment: datetime) -> None:
    """Tab to a datetime-local field and type it as an en-US reader does: MMDDYYYY → hh mm AM/PM."""
    tab_to(page, name=name)
    page.keyboard.type(moment.strftime("%m%d%Y"))
    page.keyboard.press("ArrowRight")  # from the year to the hour
    page.keyboard.type(moment.strftime("%I%M") + moment.strftime("%p")[0])


def sign_in_by_keyboard(page: Page, key: str) -> None:
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)[2] == "Skip to content", "the skip link comes first"
    tab_to(page, name="key")
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def test_signing_in_with_the_keyboard_only(page: Page, marketer_key: str) -> None:
    sign_in_by_keyboard(page, marketer_key)
    expect(Console(page).heading("Campaigns")).to_be_visible()


def test_creating_a_campaign_with_the_keyboard_only(
    page: Page, marketer_key: str, world: World
) -> None:
    console = Console(page)
    sign_in_by_keyboard(page, marketer_key)
    expect(console.heading("Campaigns")).to_be_visible()
    tab_to(page, text="New campaign")
    page.keyboard.press("Enter")
    expect(console.heading("New campaign")).to_be_visible()

    form = a_week_from_now("Typed campaign")
    type_into(page, "name", form.name)
    type_datetime(page, "starts_at", form.starts_at)
    type_datetime(page, "ends_at", form.ends_at)
    type_into(page, "holdout_pct", "5")
    type_into(page, "revenue_share.pct", "10")
    tab_to(page, name="revenue_share.basis")
    page.keyboard.type("incremental")  # a select picks the option typed
    type_into(page, "budget.max_coupons", "50")
    type_into(page, "offers.0.title", form.offer_title)
    type_into(page, "offers.0.discount.value", "50")
    type_into(page, "offers.0.applies_to.values", "onigiri")
    assert tab_to(page, text="Save draft"), "the focused button shows where the focus is"
    page.keyboard.press("Enter")

    expect(console.flash()).to_contain_text("Campaign saved.")
    campaign_id = console.campaign_id()
    world.campaigns.append(campaign_id)
    saved = world.stack.marketer.campaign(campaign_id).json()
    assert saved["name"] == form.name
    assert saved["holdout_pct"] == 5
    assert saved["revenue_share"] == {"pct": 10, "basis": "incremental"}
    assert saved["budget"]["max_coupons"] == 50
    assert datetime.fromisoformat(saved["starts_at"]) == form.starts_at
    assert datetime.fromisoformat(saved["ends_at"]) == form.ends_at
    [offer] = saved["offers"]
    assert offer["title"] == form.offer_title
    assert offer["discount"]["value"] == 50
    assert offer["applies_to"]["categories"] == ["onigiri"]
