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

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import structlog
from pydantic import ValidationError
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.conversation.consent import set_consent
from services.chat_agent.conversation.following import ask_for_offer, on_follow, on_unfollow
from services.chat_agent.conversation.linking import complete_link, start_link
from services.chat_agent.conversation.state import ConversationStore
from services.chat_agent.conversation.turn import Pacing, Turn
from services.chat_agent.line.events import LineEvent, customer_id_for, parse_event
from services.chat_agent.linking.tokens import LinkTokens
from services.chat_agent.models import Customer, ProcessedEvent
from services.chat_agent.offers.campaigns import campaign_active
from services.chat_agent.persona import Persona, product_kind
from shared.consumer import PoisonMessage
from shared.db import unit_of_work
from shared.events import (
    CATEGORY_INTENTS,
    DEFAULT_LANGUAGE,
    Envelope,
    LineWebhookEventReceived,
    payload_as,
    supported_language,
)
from shared.idempotency import first_time
from shared.ratelimit import Bucket, RateLimiter

if TYPE_CHECKING:  # for the type only: the model's package pulls in numpy, the app never does
    from services.chat_agent.understanding import Interpretation

log = structlog.get_logger(__name__)

CONSUMER = "chat_agent.inbound"
# What `user_messages` (the `line_user` bucket) limits: what a customer sends. Follows,
# unfollows and account links are never dropped (docs/interfaces.md § Rate limits).
LIMITED_TYPES = ("message", "postback")
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


class Understands(Protocol):
    """Reads a customer's message (the hybrid model, or a test's keyword rules)."""

    def understand(self, text: str, language_hint: str | None = None) -> Interpretation: ...


def handle_inbound(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    conversations: ConversationStore,
    understanding: Understands,
    persona: Persona,
    secret_key: str,
    pacing: Pacing,
    clock: Callable[[], datetime],
    kick: Callable[[], None],
    links: LinkTokens,
    limiter: RateLimiter,
    user_messages: Bucket,
) -> None:
    """Apply one `line.webhook_event`: change the customer, announce it, answer."""
    payload = payload_as(envelope, LineWebhookEventReceived)
    try:
        event = parse_event(payload.event)
    except ValidationError as exc:
        raise PoisonMessage(f"not a LINE event: {exc.error_count()} errors") from None
    # Standby: another channel owns the conversation (LINE's module mode); hands off.
    if not event.from_user or event.user_id is None or event.mode == "standby":
        metrics.EVENTS_HANDLED.labels(event.type, "ignored").inc()
        return
    customer_id = customer_id_for(secret_key, event.user_id)
    if event.type in LIMITED_TYPES and not limiter.take(user_messages, customer_id).allowed:
        metrics.EVENTS_HANDLED.labels(event.type, "rate_limited").inc()
        log.warning("inbound_rate_limited", event_type=event.type, customer_id=customer_id)
        return
    now = clock()
    state = conversations.current(customer_id, now.timestamp())
    interpretation = None
    if event.type == "message" and event.message and event.message.type == "text":
        interpretation = understanding.understand(event.message.text or "", state.language)
    # The platform call happens before the transaction, never while a row is locked.
    link_start = None
    if wants_link(event, interpretation):
        link_start = links.request(customer_id, event.user_id)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, CONSUMER, envelope.event_id):
            metrics.EVENTS_HANDLED.labels(event.type, "duplicate").inc()
            return
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            customer = Customer(
                customer_id=customer_id,
                line_user_id=event.user_id,
                language=DEFAULT_LANGUAGE,
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
            session=session,
            customer=customer,
            event=event,
            event_id=envelope.event_id,
            state=state,
            now=now,
            language=supported_language(state.language or customer.language),
            persona=persona,
            pacing=pacing,
            link_start=link_start,
        )
        outcome = _dispatch(turn, interpretation, stale)
    if turn.intent is not None:
        state.record(turn.intent, turn.sentiment, turn.language, now.timestamp())
        conversations.save(customer_id, state)
    elif event.type == "unfollow" and outcome == "applied":
        conversations.forget(customer_id)
    if turn.sent:
        kick()
    metrics.EVENTS_HANDLED.labels(event.type, outcome).inc()
    log.info(
        "inbound_handled",
        event_type=event.type,
        customer_id=customer_id,
        outcome=outcome,
        intent=turn.intent,
        redelivery=event.delivery_context.is_redelivery,
    )


def wants_link(event: LineEvent, interpretation: Interpretation | None) -> bool:
    """A wish to link a card: the "link" button, or a message that means it."""
    if event.type == "postback":
        return event.postback_params().get("action") == "link"
    return interpretation is not None and interpretation.intent == "link_membership"


def _dispatch(turn: Turn, interpretation: Interpretation | None, stale: bool) -> str:
    event = turn.event
    if event.type == "follow":
        return on_follow(turn, stale)
    if event.type == "unfollow":
        return on_unfollow(turn)
    if event.type == "accountLink":
        return complete_link(turn, stale)
    if event.type == "postback":
        intent = POSTBACK_INTENTS.get(turn.event.postback_params().get("action", ""), "help")
        return on_intent(turn, intent, None, False, stale)
    if event.type == "message" and interpretation is not None:
        i = interpretation
        # A bare member number ("M0001234") says nothing about the language: keep it.
        if not (i.member_id and i.via == "rule" and turn.state.language):
            turn.language = supported_language(i.language)
        turn.customer.language = turn.language
        turn.sentiment = i.sentiment
        metrics.INTENTS.labels(i.intent, turn.language).inc()
        # A typed member number links nothing; it is not kept, not even hashed.
        return on_intent(turn, i.intent, i.category, bool(i.member_id), stale)
    if event.type == "message":
        # Stickers, images, audio, locations, files: a friendly word, never an error.
        if stale:
            return "stale"
        turn.intent = f"message_{event.message.type if event.message else 'other'}"
        turn.reply("unsupported", [turn.line("unsupported_message")])
        return "answered"
    return "ignored"  # join/leave, beacons and the like


def on_intent(
    turn: Turn, intent: str, category: str | None, typed_number: bool, stale: bool
) -> str:
    """Answer a text or a quick-reply button by what it means."""
    if intent in ("opt_out", "opt_in"):
        return set_consent(turn, opted_out=intent == "opt_out", stale=stale)
    if stale:
        return "stale"
    turn.intent = intent
    state = turn.state
    if intent == "link_membership":
        return start_link(turn, typed_number)
    if intent == "wants_deals":
        if turn.customer.opted_out:
            turn.reply("deals", [turn.line("already_opted_out")])
            return "answered"
        ask_for_offer(turn, "deals", CATEGORY_INTENTS.get(category or "", "deal_seeking"))
        return "offer_requested"
    if intent == "greeting":
        first = not state.greeted
        state.greeted = True
        line = turn.line("greeting_again")
        if first and not turn.customer.opted_out and campaign_active(turn.session, turn.now):
            ask_for_offer(turn, "greeting", "greeting", lead=[line])
            return "offer_requested"
        turn.reply("greeting", [line])
        return "answered"
    if intent == "product_question":
        turn.reply("product", [turn.line(product_kind(category))])
        return "answered"
    turn.reply(intent, [turn.line(SIMPLE_REPLIES.get(intent, "small_talk"))])
    return "answered"
