"""Linking a loyalty member number to the customer: it travels only as its keyed hash."""

from __future__ import annotations

from services.chat_agent.conversation.turn import Turn
from shared.events import CustomerLinked


def link(turn: Turn, hashed_member_id: str | None) -> str:
    """Link the member whose number hashes to `hashed_member_id`, or ask for the number."""
    if not hashed_member_id:
        turn.state.awaiting = "member_id"
        turn.reply("link", [turn.line("link_prompt")])
        return "answered"
    customer = turn.customer
    if customer.member_hash != hashed_member_id:
        customer.member_hash, customer.linked_at = hashed_member_id, turn.now
        turn.announce(
            "customer.linked",
            CustomerLinked(customer_id=customer.customer_id, member_hash=hashed_member_id),
        )
    turn.state.awaiting = None
    turn.reply("link", [turn.line("linked")])
    return "answered"


def looks_like_a_number(turn: Turn) -> bool:
    """True when the text has three digits or more: a member number typed wrong."""
    text = (turn.event.message.text or "") if turn.event.message else ""
    return sum(ch.isdigit() for ch in text) >= 3
