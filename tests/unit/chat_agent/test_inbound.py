"""The chat worker's handling of inbound events, driven edge to edge through the webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.chat_agent.conversation.state import PREFIX
from services.chat_agent.models import Customer, OfferRequest
from shared.events import make_event
from tests.support.line_payloads import (
    follow_event,
    group_text_event,
    image_event,
    postback_event,
    redelivered,
    sticker_event,
    text_event,
    unfollow_event,
    user_id,
)
from tests.unit.chat_agent.conftest import Harness, customer_of


def _customer(harness: Harness, user: str) -> Customer:
    with harness.deps.sessions() as session:
        customer = session.get(Customer, customer_of(user))
        assert customer is not None
        return customer


def activate_campaign(harness: Harness, campaign_id: str = "cmp-1") -> None:
    now = datetime.now(UTC)
    snapshot = {
        "campaign_id": campaign_id,
        "number": 1,
        "name": "Onigiri week",
        "status": "active",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=6)).isoformat(),
        "offers": [],
        "budget": {},
        "caps": {},
        "holdout_pct": 0.1,
        "revenue_share": {"pct": 5, "basis": "attributed"},
        "per_call_fee": 1,
    }
    harness.publish(
        make_event(
            "campaign.activated",
            {"campaign_id": campaign_id, "campaign": snapshot},
            key=campaign_id,
            producer="campaign_engine",
        )
    )


def test_follow_creates_the_customer_announces_it_and_greets(harness: Harness) -> None:
    user = user_id()
    event = follow_event(user)
    harness.send([event])
    customer = _customer(harness, user)
    assert customer.followed and customer.line_user_id == user
    [followed] = harness.events("customer.followed", customer.customer_id)
    first = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    assert followed.payload == {
        "customer_id": customer.customer_id,
        "language": "ja",
        "first_followed_at": first.isoformat().replace("+00:00", "Z"),
    }
    [greeting] = harness.deliveries(customer.customer_id)
    assert greeting.reply_token == event["replyToken"]
    assert greeting.messages[-1]["quickReply"]["items"], "quick replies for the next steps"
    assert "テンちゃん" in greeting.messages[0]["text"]


def test_a_redelivered_event_is_handled_once(harness: Harness) -> None:
    user = user_id()
    event = text_event(user, "hello")
    harness.send([event])
    harness.send([redelivered(event)])
    harness.send([event])
    assert len(harness.deliveries(customer_of(user))) == 1


def test_unfollow_then_follow_revives_the_customer(harness: Harness) -> None:
    user = user_id()
    harness.send([follow_event(user, ts=1_000)])
    harness.send([unfollow_event(user, ts=2_000)])
    assert not _customer(harness, user).followed
    assert harness.events("customer.unfollowed", customer_of(user))
    harness.send([follow_event(user, ts=3_000)])
    assert _customer(harness, user).followed
    assert len(harness.events("customer.followed", customer_of(user))) == 2


def test_a_late_unfollow_never_overrides_a_newer_follow(harness: Harness) -> None:
    user = user_id()
    harness.send([follow_event(user, ts=5_000)])
    harness.send([unfollow_event(user, ts=4_000)])  # redelivered late
    assert _customer(harness, user).followed
    assert harness.events("customer.unfollowed", customer_of(user)) == []


def test_a_late_message_gets_no_answer_but_a_late_stop_still_counts(harness: Harness) -> None:
    user = user_id()
    harness.send([text_event(user, "hello", ts=10_000)])
    harness.send([text_event(user, "onigiri?", ts=9_000)])
    assert len(harness.texts(customer_of(user))) == 1, "an out-of-date message is not answered"
    harness.send([text_event(user, "stop", ts=9_500)])
    assert _customer(harness, user).opted_out, "consent changes are never dropped"
    assert harness.events("customer.opted_out", customer_of(user))


def test_a_batch_is_handled_in_timestamp_order_even_if_published_out_of_order(
    harness: Harness,
) -> None:
    user = user_id()
    # Two webhook calls racing: the newer events reach the bus first.
    harness.post([text_event(user, "stop", ts=20_000), text_event(user, "thanks", ts=20_001)])
    harness.post([text_event(user, "start", ts=19_000), text_event(user, "onigiri?", ts=19_001)])
    harness.pump()  # one poll batch: sorted by timestamp before handling
    customer = _customer(harness, user)
    assert customer.opted_out, "the newer 'stop' wins"
    assert customer.consent_changed_ms == 20_000
    assert len(harness.texts(customer_of(user))) == 4, "sorted, none of them is late: all answered"
    state = harness.deps.conversations.current(customer.customer_id, harness.clock().timestamp())
    assert state.intents == ["opt_in", "product_question", "opt_out", "thanks"]


def test_opt_out_and_back_in(harness: Harness) -> None:
    user = user_id()
    activate_campaign(harness)
    harness.send([text_event(user, "配信停止")])
    customer = _customer(harness, user)
    assert customer.opted_out
    assert harness.events("customer.opted_out", customer.customer_id)
    harness.send([text_event(user, "クーポンある？")])
    harness.send([postback_event(user, "action=deals")])
    assert harness.events("offer.requested", customer.customer_id) == [], "no offers while out"
    quick = harness.deliveries(customer.customer_id)[-1].messages[-1]["quickReply"]["items"]
    assert "action=stop" not in [i["action"]["data"] for i in quick]
    harness.send([text_event(user, "配信再開")])
    assert not _customer(harness, user).opted_out
    assert harness.events("customer.opted_in", customer.customer_id)
    harness.send([text_event(user, "any coupons?")])
    assert len(harness.events("offer.requested", customer.customer_id)) == 1


def test_deals_publish_an_offer_request_holding_the_reply_token(harness: Harness) -> None:
    user = user_id()
    event = text_event(user, "any onigiri coupons?")
    harness.send([event])
    [requested] = harness.events("offer.requested", customer_of(user))
    assert requested.payload["context"]["intent"] == "hungry"
    assert requested.payload["context"]["language"] == "en"
    assert harness.deliveries(customer_of(user)) == [], "the answer waits for the decision"
    with harness.deps.sessions() as session:
        request = session.get(OfferRequest, requested.payload["request_id"])
        assert request is not None and request.reply_token == event["replyToken"]


def test_a_first_greeting_asks_for_an_offer_only_while_a_campaign_runs(harness: Harness) -> None:
    quiet, busy = user_id(), user_id()
    harness.send([text_event(quiet, "hello")])
    assert harness.events("offer.requested", customer_of(quiet)) == []
    activate_campaign(harness, "cmp-greet")
    harness.send([text_event(busy, "hello")])
    harness.send([text_event(busy, "hello")])
    assert len(harness.events("offer.requested", customer_of(busy))) == 1, "first greeting only"


def test_stickers_and_images_get_an_in_character_answer(harness: Harness) -> None:
    user = user_id()
    harness.send([sticker_event(user), image_event(user, ts=None)])
    assert len(harness.deliveries(customer_of(user))) == 2


def test_group_events_are_ignored(harness: Harness) -> None:
    user = user_id()
    harness.send([group_text_event("hello", user=user)])
    assert harness.deliveries(customer_of(user)) == []


def test_conversation_state_keeps_intents_and_sentiment_never_texts(harness: Harness) -> None:
    user = user_id()
    harness.send([text_event(user, "hello"), text_event(user, "this is terrible, secret-42")])
    store = harness.deps.conversations
    state = store.current(customer_of(user), harness.clock().timestamp())
    assert state.turns == 2
    assert state.intents == ["greeting", "complaint"]
    assert state.sentiment < 0
    raw = json.dumps(store._states)  # type: ignore[attr-defined]
    assert "secret-42" not in raw and "terrible" not in raw
    assert PREFIX  # the Redis key prefix of the same state


def test_sessions_end_after_idling_and_report_their_turns(harness: Harness) -> None:
    user = user_id()
    harness.send(
        [text_event(user, "hello"), text_event(user, "onigiri?"), text_event(user, "thanks")]
    )
    harness.clock.advance(harness.deps.conversations.idle_timeout_s + 1)  # type: ignore[attr-defined]
    assert harness.deps.conversations.sweep(harness.clock().timestamp()) == 1
    assert harness.closed_sessions == [3]


def test_tone_follows_sentiment(harness: Harness, persona) -> None:  # type: ignore[no-untyped-def]
    user = user_id()
    harness.send([text_event(user, "terrible, just terrible")])
    [answer] = harness.texts(customer_of(user))
    gentle = persona.messages["complaint"]["en"]["gentle"]
    assert answer in gentle


def test_the_customer_table_is_the_only_place_with_the_line_user_id(harness: Harness) -> None:
    user = user_id()
    harness.send([follow_event(user), text_event(user, "stop")])
    for topic_type in ("customer.followed", "customer.opted_out"):
        for envelope in harness.events(topic_type, customer_of(user)):
            assert user not in json.dumps(envelope.model_dump(mode="json"))
    with harness.deps.sessions() as session:
        rows = session.execute(select(Customer).where(Customer.line_user_id == user)).all()
        assert len(rows) == 1
