"""Handling `chat.inbound`: one LINE webhook event per call, effectively once.

Each event is applied in one transaction that records its id (derived from
`webhookEventId`), changes the customer, writes the events it announces to the outbox
and the messages it answers with to `deliveries`. Conversation state (Redis) is updated
after the commit: it is soft, and a redelivered event must not count a turn twice.

Order: the webhook publishes a sender's events keyed by sender and sorted by timestamp,
and the worker sorts each poll batch by timestamp within a partition. An event older
than the newest one already handled for that customer (a late redelivery) gets no
answer — the conversation has moved on — but its follow or consent change is still
applied if it is newer than the last change of that same setting (last writer wins by
LINE timestamp), so a late "stop" is never lost and a late "unfollow" never overrides a
newer follow.
"""

from __future__ import annotations

from typing import Literal

import structlog
from pydantic import ValidationError

from services.chat_agent import delivery, metrics
from services.chat_agent.chat import PRODUCER, Chat, Turn, campaign_active
from services.chat_agent.line_events import parse_event
from services.chat_agent.models import Customer, Outbox, ProcessedEvent
from services.chat_agent.offers import request_offer
from services.chat_agent.persona import product_kind
from services.chat_agent.understanding import Interpretation
from services.chat_agent.webhook import customer_id_for
from shared.consumer import PoisonMessage
from shared.crypto import member_hash
from shared.db import unit_of_work
from shared.events import (
    CustomerFollowed,
    CustomerLinked,
    CustomerOptedIn,
    CustomerOptedOut,
    CustomerUnfollowed,
    Envelope,
    LineWebhookEventReceived,
    parse_payload,
)
from shared.idempotency import first_time
from shared.outbox import add_event

log = structlog.get_logger(__name__)

CONSUMER = "chat_agent.inbound"
SIMPLE_REPLIES = {
    "small_talk": "small_talk",
    "thanks": "thanks_reply",
    "complaint": "complaint",
    "help": "help",
}
POSTBACK_INTENTS = {
    "deals": "wants_deals",
    "stop": "opt_out",
    "start": "opt_in",
    "link": "link_membership",
    "help": "help",
}


def handle_inbound(chat: Chat, envelope: Envelope) -> None:
    """Apply one `line.webhook_event`."""
    payload = parse_payload(envelope)
    assert isinstance(payload, LineWebhookEventReceived)
    try:
        event = parse_event(payload.event)
    except ValidationError as exc:
        raise PoisonMessage(f"not a LINE event: {exc.error_count()} errors") from None
    if not event.from_user or event.user_id is None:
        metrics.EVENTS_HANDLED.labels(event.type, "ignored").inc()
        return
    customer_id = customer_id_for(chat.settings.secret_key, event.user_id)
    now = chat.clock()
    state = chat.conversations.current(customer_id, now.timestamp())
    interpretation = None
    if event.type == "message" and event.message and event.message.type == "text":
        interpretation = chat.understanding.understand(event.message.text or "", state.language)
    with unit_of_work(chat.sessions) as session:
        if not first_time(session, ProcessedEvent, CONSUMER, envelope.event_id):
            metrics.EVENTS_HANDLED.labels(event.type, "duplicate").inc()
            return
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            customer = Customer(
                customer_id=customer_id,
                line_user_id=event.user_id,
                language="ja",
                followed=True,
                follow_changed_ms=0,
                opted_out=False,
                consent_changed_ms=0,
                last_event_ms=0,
            )
            session.add(customer)
        stale = event.timestamp < customer.last_event_ms
        customer.last_event_ms = max(customer.last_event_ms, event.timestamp)
        turn = Turn(
            chat=chat,
            session=session,
            customer=customer,
            event=event,
            event_id=envelope.event_id,
            state=state,
            now=now,
            language=state.language or customer.language,
        )
        outcome = _dispatch(turn, interpretation, stale)
    if turn.intent is not None:
        state.record(turn.intent, turn.sentiment, turn.language, now.timestamp())
        chat.conversations.save(customer_id, state)
    elif event.type == "unfollow" and outcome == "applied":
        chat.conversations.forget(customer_id)
    if turn.sent:
        chat.kick()
    metrics.EVENTS_HANDLED.labels(event.type, outcome).inc()
    log.info(
        "inbound_handled",
        event_type=event.type,
        customer_id=customer_id,
        outcome=outcome,
        intent=turn.intent,
        redelivery=event.delivery_context.is_redelivery,
    )


def _dispatch(turn: Turn, interpretation: Interpretation | None, stale: bool) -> str:
    event = turn.event
    if event.type == "follow":
        return on_follow(turn, stale)
    if event.type == "unfollow":
        return on_unfollow(turn)
    if event.type == "postback":
        intent = POSTBACK_INTENTS.get(turn.event.postback_params().get("action", ""), "help")
        return on_intent(turn, intent, None, None, stale)
    if event.type == "message" and interpretation is not None:
        i = interpretation
        # A bare member number ("M0001234") says nothing about the language: keep it.
        if not (i.member_id and i.via == "rule" and turn.state.language):
            turn.language = i.language
        turn.customer.language = turn.language
        turn.sentiment = i.sentiment
        metrics.INTENTS.labels(i.intent, turn.language).inc()
        return on_intent(turn, i.intent, i.category, i.member_id, stale)
    if event.type == "message":
        # Stickers, images, audio, locations, files: a friendly word, never an error.
        if stale:
            return "stale"
        turn.intent = f"message_{event.message.type if event.message else 'other'}"
        turn.reply("unsupported", [turn.line("unsupported_message")])
        return "answered"
    return "ignored"  # join/leave, beacons, account-link events and the like


def on_follow(turn: Turn, stale: bool) -> str:
    """Greet the customer; create or revive them; an offer if a campaign runs."""
    customer = turn.customer
    if turn.event.timestamp < customer.follow_changed_ms:
        return "stale"
    customer.followed, customer.follow_changed_ms = True, turn.event.timestamp
    add_event(
        turn.session,
        Outbox,
        "customer.followed",
        CustomerFollowed(customer_id=customer.customer_id, language=_language(customer.language)),
        key=customer.customer_id,
        producer=PRODUCER,
    )
    if stale:
        return "applied"
    turn.intent = "follow"
    turn.state.greeted = True
    greeting = turn.line("greeting")
    if not customer.opted_out and campaign_active(turn.session, turn.now):
        request_offer(turn, "greeting", "greeting", lead=[greeting])
    else:
        turn.reply("greeting", [greeting])
    return "answered"


def on_unfollow(turn: Turn) -> str:
    customer = turn.customer
    if turn.event.timestamp < customer.follow_changed_ms:
        return "stale"
    customer.followed, customer.follow_changed_ms = False, turn.event.timestamp
    delivery.cancel_pending(turn.session, customer.customer_id)
    add_event(
        turn.session,
        Outbox,
        "customer.unfollowed",
        CustomerUnfollowed(customer_id=customer.customer_id),
        key=customer.customer_id,
        producer=PRODUCER,
    )
    return "applied"


def on_intent(
    turn: Turn, intent: str, category: str | None, member_id: str | None, stale: bool
) -> str:
    """Answer a text or a quick-reply button by what it means."""
    if intent in ("opt_out", "opt_in"):
        return set_consent(turn, opted_out=intent == "opt_out", stale=stale)
    if stale:
        return "stale"
    turn.intent = intent
    state = turn.state
    if state.awaiting == "member_id" and intent != "link_membership":
        state.awaiting = None
        if _looks_like_a_number(turn):
            turn.reply("link", [turn.line("link_invalid")])
            state.awaiting = "member_id"
            return "answered"
    if intent == "link_membership":
        return link(turn, member_id)
    if intent == "wants_deals":
        if turn.customer.opted_out:
            turn.reply("deals", [turn.line("already_opted_out")])
            return "answered"
        request_offer(turn, "deals", _offer_intent(category))
        return "offer_requested"
    if intent == "greeting":
        first = not state.greeted
        state.greeted = True
        line = turn.line("greeting_again")
        if first and not turn.customer.opted_out and campaign_active(turn.session, turn.now):
            request_offer(turn, "greeting", "greeting", lead=[line])
            return "offer_requested"
        turn.reply("greeting", [line])
        return "answered"
    if intent == "product_question":
        turn.reply("product", [turn.line(product_kind(category))])
        return "answered"
    turn.reply(intent, [turn.line(SIMPLE_REPLIES.get(intent, "small_talk"))])
    return "answered"


def set_consent(turn: Turn, *, opted_out: bool, stale: bool) -> str:
    """Opt out of offers ("stop", 「配信停止」) or back in."""
    customer = turn.customer
    if turn.event.timestamp < customer.consent_changed_ms:
        return "stale"
    already = customer.opted_out == opted_out
    if not already:
        customer.opted_out = opted_out
        customer.consent_changed_ms = turn.event.timestamp
        payload = (CustomerOptedOut if opted_out else CustomerOptedIn)(
            customer_id=customer.customer_id
        )
        add_event(
            turn.session,
            Outbox,
            "customer.opted_out" if opted_out else "customer.opted_in",
            payload,
            key=customer.customer_id,
            producer=PRODUCER,
        )
    if stale:
        return "applied"
    turn.intent = "opt_out" if opted_out else "opt_in"
    kind = ("already_opted_out" if already else "opted_out") if opted_out else "opted_in"
    turn.reply("consent", [turn.line(kind)])
    return "answered"


def link(turn: Turn, member_id: str | None) -> str:
    """Link a loyalty member number: it travels only as its keyed hash."""
    if not member_id:
        turn.state.awaiting = "member_id"
        turn.reply("link", [turn.line("link_prompt")])
        return "answered"
    customer = turn.customer
    hashed = member_hash(turn.chat.settings.secret_key, member_id)
    if customer.member_hash != hashed:
        customer.member_hash, customer.linked_at = hashed, turn.now
        add_event(
            turn.session,
            Outbox,
            "customer.linked",
            CustomerLinked(customer_id=customer.customer_id, member_hash=hashed),
            key=customer.customer_id,
            producer=PRODUCER,
        )
    turn.state.awaiting = None
    turn.reply("link", [turn.line("linked")])
    return "answered"


# The campaign engine's intent vocabulary (shared.model.features.INTENTS), by product category.
_CATEGORY_INTENTS = {
    "onigiri": "hungry",
    "bento": "hungry",
    "bakery": "hungry",
    "drinks": "thirsty",
    "coffee": "coffee",
    "sweets": "craving_sweet",
    "snacks": "craving_sweet",
}


def _offer_intent(category: str | None) -> str:
    return _CATEGORY_INTENTS.get(category or "", "deal_seeking")


def _language(language: str) -> Literal["ja", "en", "id"]:
    if language in ("ja", "en", "id"):
        return language  # type: ignore[return-value]
    return "ja"


def _looks_like_a_number(turn: Turn) -> bool:
    text = (turn.event.message.text or "") if turn.event.message else ""
    return sum(ch.isdigit() for ch in text) >= 3
