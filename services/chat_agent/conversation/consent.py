"""Consent to offers: opting out ("stop", 「配信停止」) and back in.

The last change by LINE timestamp wins, so a late "stop" still counts and a late
"start" never overrides a newer "stop".
"""

from __future__ import annotations

from services.chat_agent.conversation.turn import Turn
from shared.events import CustomerOptedIn, CustomerOptedOut


def set_consent(turn: Turn, *, opted_out: bool, stale: bool) -> str:
    """Opt out of offers or back in; announces the change and answers unless stale."""
    customer = turn.customer
    if turn.event.timestamp < customer.consent_changed_ms:
        return "stale"
    already = customer.opted_out == opted_out
    if not already:
        customer.opted_out = opted_out
        customer.consent_changed_ms = turn.event.timestamp
        if opted_out:
            turn.announce("customer.opted_out", CustomerOptedOut(customer_id=customer.customer_id))
        else:
            turn.announce("customer.opted_in", CustomerOptedIn(customer_id=customer.customer_id))
    if stale:
        return "applied"
    turn.intent = "opt_out" if opted_out else "opt_in"
    kind = ("already_opted_out" if already else "opted_out") if opted_out else "opted_in"
    turn.reply("consent", [turn.line(kind)])
    return "answered"
