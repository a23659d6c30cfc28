"""The console's pages against the real campaign engine and tracker (docs/console.md § Pages):
a campaign made through the form, its errors by the fields the API names, the lifecycle
with its confirmation, the tighten-only hints, the lookups, and both languages."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from flask.testing import FlaskClient

from tests.integration.console.conftest import Apis, csrf_of

pytestmark = pytest.mark.integration
TOKYO = ZoneInfo("Asia/Tokyo")


def _local(moment: datetime) -> str:
    return moment.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")


def _form(name: str, **over: str) -> dict[str, str]:
    now = datetime.now(UTC)
    form = {
        "name": name,
        "starts_at": _local(now - timedelta(hours=1)),
        "ends_at": _local(now + timedelta(days=14)),
        "holdout_pct": "10",
        "revenue_share.pct": "5",
        "revenue_share.basis": "attributed",
        "per_call_fee": "2",
        "budget.max_coupons": "1,000",
        "caps.per_customer_per_day": "1",
        "caps.per_customer_total": "3",
        "offers.0.title": "Onigiri ¥50 off",
        "offers.0.discount.type": "amount",
        "offers.0.discount.value": "50",
        "offers.0.applies_to.kind": "categories",
        "offers.0.applies_to.values": "onigiri, bento",
        "offers.0.min_basket": "300",
        "offers.0.valid_hours": "72",
    }
    return form | over


def _create(client: FlaskClient, name: str, **over: str) -> str:
    token = csrf_of(client, "/campaigns/new")
    answer = client.post("/campaigns/new", data={**_form(name, **over), "csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    return answer.headers["Location"].rsplit("/", 1)[-1]


def _api(apis: Apis, campaign_id: str) -> dict[str, Any]:
    answer = requests.get(
        f"{apis.engine_url}/v1/campaigns/{campaign_id}",
        headers={"Authorization": f"Bearer {apis.keys['marketer']}"},
        timeout=10,
    )
    body: dict[str, Any] = answer.json()
    return body


def test_the_api_errors_show_next_to_the_fields_they_name(signed_in: FlaskClient) -> None:
    token = csrf_of(signed_in, "/campaigns/new")
    now = datetime.now(UTC)
    form = _form(
        "",
        ends_at=_local(now - timedelta(days=2)),  # before the start
        **{"offers.0.discount.value": "lots", "budget.max_coupons": "-5"},
    )
    answer = signed_in.post("/campaigns/new", data={**form, "csrf_token": token})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    for field, element in [
        ("name", "name"),
        ("ends_at", "ends_at"),
        ("offers.0.discount.value", "offers-0-discount-value"),
        ("budget.max_coupons", "budget-max_coupons"),
    ]:
        # the input says it is invalid and points at its message, right after it
        control = re.search(rf'<input id="{element}" name="{re.escape(field)}"[^>]*>', page, re.S)
        assert control, field
        assert 'aria-invalid="true"' in control.group(0), field
        assert f"error-{element}" in control.group(0), field
        assert f'<p class="field-error" id="error-{element}">' in page, field
    assert 'id="form-errors" role="alert"' in page and "There is a problem" in page
    assert 'value="lots"' in page  # what the marketer typed is kept


def test_create_edit_and_activate_with_a_confirmation(signed_in: FlaskClient, apis: Apis) -> None:
    name = f"Console {uuid.uuid4().hex[:6]}"
    audience = {"audience.languages": "ja", "audience.min_visits_per_week": "1.5"}
    campaign_id = _create(signed_in, name, message_cost="3", pacing="asap", **audience)
    detail = signed_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Campaign saved." in detail and name in detail
    assert "No report yet: the campaign has not been activated." in detail
    stored = _api(apis, campaign_id)
    assert stored["status"] == "draft"
    assert stored["budget"]["max_coupons"] == 1000
    offer = stored["offers"][0]
    assert offer["applies_to"]["categories"] == ["onigiri", "bento"]
    assert (stored["message_cost"], stored["pacing"]) == (3, "asap")
    assert stored["audience"]["languages"] == ["ja"]
    assert stored["audience"]["min_visits_per_week"] == 1.5

    # Edit: only the changed field is sent
    edit_page = signed_in.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert f'value="{name}"' in edit_page
    token = csrf_of(signed_in, f"/campaigns/{campaign_id}/edit")
    renamed = name + " (renamed)"
    answer = signed_in.post(
        f"/campaigns/{campaign_id}/edit",
        data={
            **_form(renamed),
            "offers.0.offer_id": stored["offers"][0]["offer_id"],
            "csrf_token": token,
        },
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    assert _api(apis, campaign_id)["name"] == renamed

    confirm = signed_in.get(f"/campaigns/{campaign_id}/activate").get_data(as_text=True)
    assert "Activate campaign?" in confirm and "Yes, activate" in confirm
    assert _api(apis, campaign_id)["status"] == "draft"  # the confirmation page changes nothing
    token = csrf_of(signed_in, f"/campaigns/{campaign_id}/activate")
    done = signed_in.post(f"/campaigns/{campaign_id}/activate", data={"csrf_token": token})
    assert done.status_code == 303
    assert _api(apis, campaign_id)["status"] == "active"
    detail = signed_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Campaign activated." in detail
    assert 'id="live-report" aria-live="polite"' in detail and "hx-get=" in detail

    # Live: the fixed terms are disabled and say why; limits say they may only go down
    live_form = signed_in.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert re.search(r'<input id="starts_at"[^>]*disabled', live_form)
    assert "Fixed once the campaign has run" in live_form
    assert "May only be lowered" in live_form


def test_a_refused_transition_is_said_in_words(signed_in: FlaskClient, apis: Apis) -> None:
    campaign_id = _create(signed_in, f"Draft {uuid.uuid4().hex[:6]}")
    token = csrf_of(signed_in, f"/campaigns/{campaign_id}/pause")
    answer = signed_in.post(f"/campaigns/{campaign_id}/pause", data={"csrf_token": token})
    assert answer.status_code == 303
    detail = signed_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Campaign paused." not in detail
    assert _api(apis, campaign_id)["status"] == "draft"
    flash = re.search(r'<div id="flash" role="status">(.*?)</div>', detail, re.S)
    assert flash and flash.group(1).strip()  # the API's reason


def test_the_campaign_list_filters_by_status_and_name(signed_in: FlaskClient) -> None:
    tag = uuid.uuid4().hex[:6]
    _create(signed_in, f"Filter {tag} one")
    page = signed_in.get(f"/campaigns?status=draft&q=filter+{tag}").get_data(as_text=True)
    assert f"Filter {tag} one" in page
    active = signed_in.get(f"/campaigns?status=active&q={tag}").get_data(as_text=True)
    assert f"Filter {tag} one" not in active and "No campaigns match." in active


def test_an_unknown_coupon_code_is_an_error_by_its_field(signed_in: FlaskClient) -> None:
    answer = signed_in.get("/explain?coupon_code=not-a-code")
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'aria-describedby="error-coupon_code"' in page
    assert '<p class="field-error" id="error-coupon_code">' in page
    missing = signed_in.get(f"/decisions/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert '<p class="field-error" id="error-decision_id">' in missing.get_data(as_text=True)


def test_pages_in_japanese_and_english(console: object, signed_in: FlaskClient) -> None:
    _create(signed_in, f"Lang {uuid.uuid4().hex[:6]}")
    english = signed_in.get("/campaigns").get_data(as_text=True)
    assert '<html lang="en">' in english and "<h1>Campaigns</h1>" in english
    signed_in.delete_cookie("console_lang")
    japanese = signed_in.get("/campaigns", headers={"Accept-Language": "ja,en;q=0.5"})
    assert '<html lang="ja">' in japanese.get_data(as_text=True)
    assert "<h1>キャンペーン</h1>" in japanese.get_data(as_text=True)
    switched = signed_in.get("/language/en?next=/campaigns", headers={"Accept-Language": "ja"})
    assert switched.status_code == 303 and switched.headers["Location"] == "/campaigns"
    again = signed_in.get("/campaigns", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "<h1>Campaigns</h1>" in again  # the switch wins over Accept-Language


def test_drops_start_list_and_cancel_from_the_detail_page(
    signed_in: FlaskClient, apis: Apis
) -> None:
    campaign_id = _create(signed_in, f"Drop {uuid.uuid4().hex[:6]}")
    token = csrf_of(signed_in, f"/campaigns/{campaign_id}/activate")
    signed_in.post(f"/campaigns/{campaign_id}/activate", data={"csrf_token": token})
    detail = signed_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Start drop" in detail, "the drops API answers, so the form shows"
    token = csrf_of(signed_in, f"/campaigns/{campaign_id}")
    dry = signed_in.post(
        f"/campaigns/{campaign_id}/drops", data={"csrf_token": token, "dry_run": "1"}
    )
    assert dry.status_code == 303
    page = signed_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert re.search(r"Dry run: \d+ eligible, \d+ coupons, \d+ messages\.", page)
    bad = signed_in.post(
        f"/campaigns/{campaign_id}/drops", data={"csrf_token": token, "max_messages": "many"}
    )
    assert bad.status_code == 422
    assert '<p class="field-error" id="error-max_messages">' in bad.get_data(as_text=True)
    # a drop that waits (send_after tomorrow) is listed with its progress and can be cancelled
    tomorrow = _local(datetime.now(UTC) + timedelta(days=1))
    started = signed_in.post(
        f"/campaigns/{campaign_id}/drops", data={"csrf_token": token, "send_after": tomorrow}
    )
    assert started.status_code == 303
    fragment = signed_in.get(f"/campaigns/{campaign_id}/drops/live").get_data(as_text=True)
    assert 'aria-label="Drop progress"' in fragment and ">Cancel drop</button>" in fragment
    drop_id = re.search(r'id="drop-([0-9a-f-]+)"', fragment).group(1)  # type: ignore[union-attr]  # asserted by the next line's use
    cancelled = signed_in.post(
        f"/campaigns/{campaign_id}/drops/{drop_id}/cancel", data={"csrf_token": token}
    )
    assert cancelled.status_code == 303
    after = signed_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Drop cancelled." in after
    listed = signed_in.get(f"/campaigns/{campaign_id}/drops/live").get_data(as_text=True)
    assert ">Cancel drop</button>" not in listed and "<td>cancelled</td>" in listed
