"""The console's doors, tried from a real browser (docs/console.md, security model): a form
without its CSRF token, a till's key at the sign-in form, and a signed-out session."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import Console, a_week_from_now, campaign_names
from tests.steps.world import World
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

# Every page a signed-in marketer can open; {id} is a real campaign.
PAGES = (
    "/",
    "/campaigns",
    "/campaigns?status=active",
    "/campaigns/new",
    "/campaigns/{id}",
    "/campaigns/{id}/edit",
    "/campaigns/{id}/activate",
    "/campaigns/{id}/pause",
    "/campaigns/{id}/end",
    "/campaigns/{id}/forecast",
    "/explain",
    "/decisions/00000000-0000-0000-0000-000000000000",
    "/statements",
    "/statements.csv?campaign_id={id}&period=2026-11",
    "/models",
)
# The parts of the detail page that htmx refreshes: signed out, 401 and a redirect for htmx.
FRAGMENTS = ("/campaigns/{id}/live", "/campaigns/{id}/drops/live")


def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, marketer_key: str, world: World
) -> None:
    console = Console(page)
    console.sign_in(marketer_key)
    console.nav("New campaign")
    form = a_week_from_now("Forged form")
    console.fill_campaign(form)
    save = page.get_by_role("button", name="Save draft")
    removed = save.evaluate(
        "b => { const t = b.form.querySelectorAll('input[name=csrf_token]');"
        " t.forEach(e => e.remove()); return t.length; }"
    )
    assert removed == 1, "the form carries exactly one CSRF token"
    save.click()
    expect(console.heading("Request refused")).to_be_visible()
    expect(page.get_by_text(re.compile("CSRF"))).not_to_have_count(0)
    assert form.name not in campaign_names(world.stack.marketer), "nothing was saved"


def test_a_pos_key_cannot_sign_in(page: Page, stack: RunningStack) -> None:
    pos_key = str(stack.tills["S001"].http.headers["Authorization"]).removeprefix("Bearer ")
    console = Console(page)
    console.sign_in(pos_key)
    expect(console.field_error("key")).to_have_text("This key is not a marketer key.")
    expect(page.get_by_label("Marketer key")).to_have_attribute("aria-invalid", "true")
    assert pos_key not in page.content(), "a key never appears in a page"
    assert pos_key not in page.url
    page.goto("/campaigns")
    expect(console.heading("Sign in")).to_be_visible()


def test_a_signed_out_session_reaches_no_page(page: Page, marketer_key: str, world: World) -> None:
    campaign_id = world.create_active_campaign("Behind the door", 0.0)
    console = Console(page)
    console.sign_in(marketer_key)
    expect(console.heading("Campaigns")).to_be_visible()
    cookies_while_signed_in = page.context.cookies()
    console.sign_out()
    # The old cookie comes back, as a stolen or cached one would: the server forgot it.
    page.context.add_cookies(cookies_while_signed_in)  # type: ignore[arg-type]
    for path in PAGES:
        url = path.format(id=campaign_id)
        response = page.request.get(url, max_redirects=0)
        assert response.status in (303, 401), f"{url} answered {response.status} signed out"
        page.goto(url)
        assert re.search(r"/sign-in(\?|$)", page.url), f"{url} showed {page.url}"
        expect(console.heading("Sign in")).to_be_visible()
        assert "Behind the door" not in page.content(), f"{url} leaked the campaign"
    for path in FRAGMENTS:
        url = path.format(id=campaign_id)
        response = page.request.get(url, headers={"HX-Request": "true"}, max_redirects=0)
        assert response.status == 401, f"{url} answered {response.status} signed out"
        assert "/sign-in" in response.headers.get("hx-redirect", ""), response.headers
        assert "Behind the door" not in response.text(), f"{url} leaked the campaign"
