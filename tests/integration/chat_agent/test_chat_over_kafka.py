"""The chat agent end to end over real Kafka, PostgreSQL and Redis.

Signed LINE payloads go into the webhook; the worker runs its real consumers, outbox
relay and delivery loop; a recording server plays the LINE Messaging API.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import zxingcpp
from PIL import Image
from sqlalchemy import select

from services.chat_agent.line.webhook import SEEN_PREFIX
from services.chat_agent.models import Customer
from shared.auth import create_key
from shared.coupons import CouponClaims, coupon_key, issue_code
from shared.crypto import member_hash
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.redis_client import make_redis
from tenin.line_recorder import PUSH
from tests.integration.chat_agent.conftest import ChatStack, dumps, texts
from tests.support.line_payloads import account_link_event, redelivered, text_event, user_id
from tests.support.waiting import wait_for


def customer(stack: ChatStack, user: str) -> Customer | None:
    sessions = make_session_factory(make_engine(stack.settings.effective_database_url, pool_size=1))
    with sessions() as session:
        return session.execute(
            select(Customer).where(Customer.line_user_id == user)
        ).scalar_one_or_none()


def customer_id(stack: ChatStack, user: str) -> str:
    found = wait_for(lambda: customer(stack, user), timeout=45, what="the customer row")
    return found.customer_id


def decide(stack: ChatStack, request: dict, code: str | None, arm: str = "treatment") -> None:
    now = datetime.now(UTC)
    coupon = None
    if code:
        coupon = {
            "code": code,
            "title": "ツナマヨおにぎり",
            "discount": {"type": "amount", "value": 30},
            "valid_from": now.isoformat(),
            "expires_at": (now + timedelta(hours=12)).isoformat(),
        }
    stack.publish(
        "offer.decided",
        {
            "request_id": request["request_id"],
            "customer_id": request["customer_id"],
            "campaign_id": "cmp-it" if code else None,
            "offer_id": "o1" if code else None,
            "arm": arm,
            "coupon": coupon,
            "propensity": 0.8,
            "score": 0.2 if code else None,
            "model_version": "it",
            "reason": None if code else "holdout",
        },
        key=request["customer_id"],
    )


def a_code(stack: ChatStack, serial: int) -> str:
    return issue_code(
        coupon_key(stack.settings.secret_key),
        CouponClaims(3, 0, serial, datetime(2031, 1, 1, tzinfo=UTC)),
    )


def test_deals_to_a_delivered_coupon_with_a_scannable_qr(stack: ChatStack) -> None:
    user = user_id()
    asked = text_event(user, "クーポンある？")
    stack.line.own_reply_token(asked["replyToken"], user)
    assert stack.post([asked]).status_code == 200
    cid = customer_id(stack, user)
    [requested] = stack.events("offer.requested", cid)
    assert requested.payload["context"]["intent"] == "deal_seeking"
    assert requested.payload["context"]["language"] == "ja"
    code = a_code(stack, 1001)
    decide(stack, requested.payload, code)
    [coupon] = wait_for(lambda: stack.line.delivered_to(user), timeout=45, what="the coupon")
    assert coupon.channel == "reply", "decided within the token's minute: the free reply API"
    text, image = coupon.messages
    assert (
        code in text["text"] and "ツナマヨおにぎり" in text["text"] and "30円引き" in text["text"]
    )
    assert image["originalContentUrl"] == f"http://tenin.test/coupons/{code}/qr.png"
    png = stack.client.get(urlparse(image["originalContentUrl"]).path)
    assert png.status_code == 200
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert read.text == code
    [delivered] = stack.events("coupon.delivered", cid)
    assert delivered.payload["code"] == code and delivered.payload["channel"] == "reply"


def test_a_redelivered_webhook_is_answered_once(stack: ChatStack) -> None:
    user = user_id()
    event = text_event(user, "hello there")
    stack.line.own_reply_token(event["replyToken"], user)
    assert stack.post([event]).status_code == 200
    redis = make_redis(stack.settings.redis_url or "")
    assert redis.get(SEEN_PREFIX + event["webhookEventId"]) == "1"
    assert stack.post([redelivered(event)]).status_code == 200
    redis.delete(SEEN_PREFIX + event["webhookEventId"])  # past the fast path: the DB decides
    assert stack.post([redelivered(event)]).status_code == 200
    wait_for(lambda: stack.line.delivered_to(user), timeout=45, what="the answer")
    later = text_event(user, "thanks!")
    stack.line.own_reply_token(later["replyToken"], user)
    stack.post([later])
    wait_for(lambda: len(stack.line.delivered_to(user)) == 2, timeout=45, what="the next answer")
    assert len(stack.line.delivered_to(user)) == 2, "the duplicates were never answered"


def test_opt_out_stops_offers_and_is_announced(stack: ChatStack) -> None:
    user = user_id()
    stop = text_event(user, "配信停止")
    stack.line.own_reply_token(stop["replyToken"], user)
    stack.post([stop])
    cid = customer_id(stack, user)
    [opted_out] = stack.events("customer.opted_out", cid)
    assert user not in dumps(opted_out)
    ask = text_event(user, "クーポンください")
    stack.line.own_reply_token(ask["replyToken"], user)
    stack.post([ask])
    wait_for(lambda: len(stack.line.delivered_to(user)) == 2, timeout=45, what="two answers")
    stack.post([text_event(user, "配信再開")])
    stack.events("customer.opted_in", cid)
    again = text_event(user, "クーポンください")
    stack.post([again])
    # The relay publishes in commit order on one partition: a request made while opted
    # out would show up before this one.
    requests = stack.events("offer.requested", cid)
    assert len(requests) == 1


def test_a_card_links_only_through_the_account_link_flow(stack: ChatStack) -> None:
    """Issue 11: a typed number linked at once; now only a redeemed nonce links."""
    user = user_id()
    typed = text_event(user, "会員番号はM0042424です")
    stack.line.own_reply_token(typed["replyToken"], user)
    stack.post([typed])
    [answer] = wait_for(lambda: stack.line.delivered_to(user), timeout=45, what="the answer")
    [url] = re.findall(r"https?://[!-~]+", " ".join(answer.texts()))
    [token] = parse_qs(urlparse(url).query)["linkToken"]
    assert stack.line.link_tokens[token] == user
    sessions = make_session_factory(make_engine(stack.settings.effective_database_url, pool_size=1))
    with unit_of_work(sessions) as session:
        key = create_key(session, stack.settings.secret_key, "members")
    issued = stack.client.post(
        "/v1/members/link-nonces",
        json={"member_id": "M0042424", "link_token": token},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert issued.status_code == 201, issued.get_json()
    cid = customer_id(stack, user)
    found = customer(stack, user)
    assert found is not None and found.member_hash is None, "the typed number linked nothing"
    stack.post([account_link_event(user, issued.get_json()["nonce"])])
    [linked] = stack.events("customer.linked", cid)
    expected = member_hash(stack.settings.pseudonym_key, "M0042424")
    assert linked.payload["member_hash"] == expected
    assert "0042424" not in dumps(linked)


def test_out_of_order_webhooks_resolve_to_the_newest_choice(stack: ChatStack) -> None:
    user = user_id()
    now = int(datetime.now(UTC).timestamp() * 1000)
    stack.post([text_event(user, "stop", ts=now)])
    stack.post([text_event(user, "start", ts=now - 5_000)])  # older, arrives second
    cid = customer_id(stack, user)
    stack.events("customer.opted_out", cid)
    found = wait_for(
        lambda: (c := customer(stack, user)) is not None and c.last_event_ms == now and c,
        timeout=45,
    )
    assert found.opted_out


def test_push_retries_429_and_500_once_delivered_and_never_retries_400(
    stack: ChatStack,
) -> None:
    user = user_id()
    hello = text_event(user, "hello")
    stack.line.own_reply_token(hello["replyToken"], user)
    stack.post([hello])
    cid = customer_id(stack, user)
    wait_for(lambda: stack.line.delivered_to(user), timeout=45, what="the greeting")
    stack.line.fail(429, path=PUSH, retry_after=1)
    stack.line.fail(500, path=PUSH)
    redeemed = {
        "code": a_code(stack, 2002),
        "customer_id": cid,
        "campaign_id": "cmp-it",
        "offer_id": "o1",
        "transaction_id": f"T-{user}",
        "store_id": "S001",
        "discount": 30,
        "basket_total": 500,
    }
    stack.publish("coupon.redeemed", redeemed, key=cid)
    [thanks] = wait_for(
        lambda: [d for d in stack.line.delivered if d.to == user],
        timeout=45,
        what="the thank-you push",
    )
    pushes = [c for c in stack.line.calls(PUSH) if c.body.get("to") == user]
    assert [c.status for c in pushes] == [429, 500, 200]
    assert pushes[1].at - pushes[0].at >= 0.9, "Retry-After: 1 was honoured"
    assert len({c.retry_key for c in pushes}) == 1
    assert texts([thanks]) and thanks.reply_token is None
    stack.line.fail(400, path=PUSH, message="Invalid to")
    stack.publish("coupon.redeemed", {**redeemed, "transaction_id": f"T2-{user}"}, key=cid)
    wait_for(
        lambda: len([c for c in stack.line.calls(PUSH) if c.body.get("to") == user]) == 4,
        timeout=45,
        what="the 400 attempt",
    )
    stack.publish("coupon.redeemed", {**redeemed, "transaction_id": f"T3-{user}"}, key=cid)
    wait_for(lambda: len([d for d in stack.line.delivered if d.to == user]) == 2, timeout=45)
    statuses = [c.status for c in stack.line.calls(PUSH) if c.body.get("to") == user]
    assert statuses == [429, 500, 200, 400, 200], "the 400 was not retried"
