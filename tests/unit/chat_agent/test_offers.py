"""Offer decisions become coupon messages (or kind words); redemptions get a thank-you."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from PIL import Image

from services.chat_agent.handlers import messaging
from services.chat_agent.offers.campaigns import campaign_active
from services.chat_agent.offers.held_greetings import release_held_greetings
from shared.coupons import CouponClaims, coupon_key, issue_code
from shared.events import Envelope, make_event
from tests.support.line_payloads import follow_event, text_event, user_id
from tests.unit.chat_agent.conftest import UNIT_SETTINGS_SECRET, Harness, customer_of
from tests.unit.chat_agent.test_inbound import activate_campaign


def a_code(serial: int = 7) -> str:
    expires = datetime(2030, 1, 1, 15, tzinfo=UTC)
    return issue_code(coupon_key(UNIT_SETTINGS_SECRET), CouponClaims(12, 1, serial, expires))


def decision(
    request: Envelope, *, arm: str = "treatment", code: str | None = None, reason: str | None = None
) -> Envelope:
    coupon = None
    if code:
        now = datetime.now(UTC)
        coupon = {
            "code": code,
            "title": "Tuna-mayo onigiri",
            "discount": {"type": "amount", "value": 50},
            "valid_from": now.isoformat(),
            "expires_at": (now + timedelta(hours=24)).isoformat(),
            "min_basket": 300,
        }
    payload = {
        "request_id": request.payload["request_id"],
        "customer_id": request.payload["customer_id"],
        "campaign_id": "cmp-1" if code else None,
        "offer_id": "off-1" if code else None,
        "arm": arm,
        "coupon": coupon,
        "propensity": 0.9,
        "score": 0.1 if code else None,
        "model_version": "test",
        "reason": reason,
    }
    return make_event("offer.decided", payload, key=request.key, producer="campaign_engine")


def test_a_coupon_decision_sends_text_qr_image_and_quick_replies(harness: Harness) -> None:
    user = user_id()
    asked = text_event(user, "any coupons?")
    harness.send([asked])
    [request] = harness.events("offer.requested", customer_of(user))
    code = a_code()
    harness.publish(decision(request, code=code))
    [coupon] = harness.deliveries(customer_of(user))
    assert coupon.kind == "coupon" and coupon.coupon_code == code
    assert coupon.reply_token == asked["replyToken"], "a fresh token: the reply API"
    text, image = coupon.messages
    assert code in text["text"] and "Tuna-mayo onigiri" in text["text"]
    assert "¥50 off" in text["text"] and "¥300" in text["text"]
    assert "JST" in text["text"], "the expiry, in store time"
    url = f"https://tenin.example/coupons/{code}/qr.png"
    assert image == {
        "type": "image",
        "originalContentUrl": url,
        "previewImageUrl": url,
        "quickReply": image["quickReply"],
    }
    assert [i["action"]["data"] for i in image["quickReply"]["items"]] == [
        "action=deals",
        "action=help",
        "action=stop",
        "action=link",
    ]


def test_the_qr_image_decodes_back_to_the_code(harness: Harness) -> None:
    code = a_code(serial=99)
    response = harness.client.get(f"/coupons/{code}/qr.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.data)))
    assert found.text == code
    assert harness.client.get("/coupons/TN-NOT-A-CODE/qr.png").status_code == 404
    wrong_check = "X" if code[-1] != "X" else "Y"
    assert harness.client.get(f"/coupons/{code[:-1]}{wrong_check}/qr.png").status_code == 404


def test_the_qr_route_refuses_a_forged_code_before_rendering(harness: Harness) -> None:
    """Issue 11: any code with a valid check character used to render, unauthenticated."""
    expires = datetime(2030, 1, 1, 15, tzinfo=UTC)
    forged = issue_code(coupon_key("not-the-server-key" * 2), CouponClaims(12, 1, 5, expires))
    response = harness.client.get(f"/coupons/{forged}/qr.png")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == [
        {"field": "code", "message": "not a coupon code tenin issued"}
    ]


def test_holdout_and_none_get_a_kind_message_without_a_coupon(harness: Harness) -> None:
    for arm, reason in (("holdout", "holdout"), ("none", "budget_exhausted")):
        user = user_id()
        harness.send([text_event(user, "クーポンある？")])
        [request] = harness.events("offer.requested", customer_of(user))
        harness.publish(decision(request, arm=arm, reason=reason))
        [answer] = harness.deliveries(customer_of(user))
        assert answer.kind == "no_offer" and answer.coupon_code is None
        assert [m["type"] for m in answer.messages] == ["text"]
        assert "TN-" not in answer.messages[0]["text"]


def test_a_follow_greeting_waits_for_the_offer_and_goes_with_it(harness: Harness) -> None:
    activate_campaign(harness)
    user = user_id()
    harness.send([follow_event(user)])
    assert harness.deliveries(customer_of(user)) == []
    [request] = harness.events("offer.requested", customer_of(user))
    harness.publish(decision(request, code=a_code(3)))
    [together] = harness.deliveries(customer_of(user))
    assert [m["type"] for m in together.messages] == ["text", "text", "image"]


def test_a_greeting_without_its_offer_in_time_goes_alone(harness: Harness) -> None:
    activate_campaign(harness)
    user = user_id()
    harness.send([follow_event(user)])
    harness.clock.advance(harness.deps.pacing.hold_s + 1)
    assert release_held_greetings(**messaging(harness.deps)) == 1
    [greeting] = harness.deliveries(customer_of(user))
    assert greeting.kind == "greeting" and greeting.reply_token
    [request] = harness.events("offer.requested", customer_of(user))
    harness.publish(decision(request, code=a_code(4)))
    greeting, coupon = harness.deliveries(customer_of(user))
    assert coupon.reply_token is None, "the token is spent: the coupon is pushed"
    assert [m["type"] for m in coupon.messages] == ["text", "image"]


def test_a_holdout_on_a_follow_sends_just_the_greeting(harness: Harness) -> None:
    activate_campaign(harness)
    user = user_id()
    harness.send([follow_event(user)])
    [request] = harness.events("offer.requested", customer_of(user))
    harness.publish(decision(request, arm="holdout", reason="holdout"))
    [greeting] = harness.deliveries(customer_of(user))
    assert len(greeting.messages) == 1


def test_a_decision_is_applied_once(harness: Harness) -> None:
    user = user_id()
    harness.send([text_event(user, "coupon please")])
    [request] = harness.events("offer.requested", customer_of(user))
    decided = decision(request, code=a_code(5))
    harness.publish(decided)
    harness.publish(decided)
    harness.publish(decision(request, code=a_code(6)))  # a second decision for one request
    assert len(harness.deliveries(customer_of(user))) == 1


def test_no_coupon_reaches_a_customer_who_opted_out_meanwhile(harness: Harness) -> None:
    user = user_id()
    harness.send([text_event(user, "coupon please")])
    [request] = harness.events("offer.requested", customer_of(user))
    harness.send([text_event(user, "stop")])
    harness.publish(decision(request, code=a_code(8)))
    assert all(d.coupon_code is None for d in harness.deliveries(customer_of(user)))


@pytest.mark.parametrize("named", [True, False], ids=["customer named", "customer not named"])
def test_a_redeemed_coupon_is_followed_by_a_thank_you(harness: Harness, named: bool) -> None:
    """Not named: the tracker had no copy of the coupon's issue yet when it was paid; the
    customer the clerk gave the code to is thanked."""
    user = user_id()
    harness.send([text_event(user, "coupon please")])
    [request] = harness.events("offer.requested", customer_of(user))
    code = a_code(9)
    harness.publish(decision(request, code=code))
    redeemed = make_event(
        "coupon.redeemed",
        {
            "code": code,
            "customer_id": customer_of(user) if named else None,
            "campaign_id": "cmp-1",
            "offer_id": "off-1",
            "transaction_id": "S001-1",
            "store_id": "S001",
            "discount": 50,
            "basket_total": 600,
        },
        key=customer_of(user) if named else code,  # the tracker's key when it names none
        producer="redemption_tracker",
    )
    harness.publish(redeemed)
    harness.publish(redeemed)
    coupon, thanks = harness.deliveries(customer_of(user))
    assert thanks.kind == "thanks" and thanks.reply_token is None
    assert "Tuna-mayo onigiri" in thanks.messages[0]["text"]


def test_campaign_events_keep_the_latest_status(harness: Harness) -> None:
    activate_campaign(harness, "cmp-x")
    with harness.deps.sessions() as session:
        assert campaign_active(session, datetime.now(UTC))
    now = datetime.now(UTC)
    paused = {
        "campaign_id": "cmp-x",
        "number": 1,
        "name": "x",
        "status": "paused",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "offers": [],
        "budget": {},
        "caps": {},
        "holdout_pct": 0.1,
        "revenue_share": {},
        "per_call_fee": 0,
    }
    harness.publish(
        make_event(
            "campaign.paused",
            {"campaign_id": "cmp-x", "campaign": paused},
            key="cmp-x",
            producer="campaign_engine",
        )
    )
    with harness.deps.sessions() as session:
        assert not campaign_active(session, datetime.now(UTC))
