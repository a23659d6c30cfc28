"""Follow and unfollow: who is a follower, since when, and when a follow earns an offer.

The first follow is kept for good (`first_followed_ms`): a customer who unfollows and
follows again is not a new follower, and `customer.followed` says when they first came.
A follow asks for an offer only if no follow asked for one within
`Pacing.refollow_offer_s` (TENIN_REFOLLOW_OFFER_DAYS), so re-following does not farm
coupons (docs/architecture.md § Invariants).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.chat_agent.conversation.turn import Turn
from services.chat_agent.delivery import queue
from services.chat_agent.offers.asking import request_offer
from services.chat_agent.offers.campaigns import campaign_active
from shared.events import CustomerFollowed, CustomerUnfollowed, supported_language


def on_follow(turn: Turn, stale: bool) -> str:
    """Greet the customer; create or revive them; an offer if a campaign runs."""
    customer = turn.customer
    at_ms = turn.event.timestamp
    if at_ms < customer.follow_changed_ms:
        return "stale"
    customer.followed, customer.follow_changed_ms = True, at_ms
    if customer.first_followed_ms is None or at_ms < customer.first_followed_ms:
        customer.first_followed_ms = at_ms
    turn.announce(
        "customer.followed",
        CustomerFollowed(
            customer_id=customer.customer_id,
            language=supported_language(customer.language),
            first_followed_at=datetime.fromtimestamp(customer.first_followed_ms / 1000, UTC),
        ),
    )
    if stale:
        return "applied"
    turn.intent = "follow"
    turn.state.greeted = True
    greeting = turn.line("greeting")
    if _offer_earned(turn) and campaign_active(turn.session, turn.now):
        customer.follow_offered_ms = at_ms
        ask_for_offer(turn, "greeting", "greeting", lead=[greeting])
    else:
        turn.reply("greeting", [greeting])
    return "answered"


def on_unfollow(turn: Turn) -> str:
    """Mark the customer unfollowed and cancel what was still to be sent to them."""
    customer = turn.customer
    if turn.event.timestamp < customer.follow_changed_ms:
        return "stale"
    customer.followed, customer.follow_changed_ms = False, turn.event.timestamp
    queue.cancel_pending(turn.session, customer.customer_id)
    turn.announce("customer.unfollowed", CustomerUnfollowed(customer_id=customer.customer_id))
    return "applied"


def _offer_earned(turn: Turn) -> bool:
    """Opted in, and no follow asked for an offer within the re-follow window."""
    customer = turn.customer
    if customer.opted_out:
        return False
    last = customer.follow_offered_ms
    window_ms = turn.pacing.refollow_offer_s * 1000
    return last is None or turn.event.timestamp - last >= window_ms


def ask_for_offer(turn: Turn, trigger: str, intent: str, lead: list[str] | None = None) -> None:
    """Ask for an offer instead of answering now; `lead` lines wait for it (`hold_s`)."""
    request_offer(
        turn.session,
        event_id=turn.event_id,
        customer_id=turn.customer.customer_id,
        trigger=trigger,
        intent=intent,
        language=turn.language,
        mood=turn.mood,
        asked_at=turn.event_time,
        reply_token=turn.event.reply_token,
        reply_deadline=turn.reply_deadline,
        hold_until=turn.now + timedelta(seconds=turn.pacing.hold_s),
        lead=lead,
    )
