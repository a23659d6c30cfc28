"""Linking a loyalty card in chat: only through LINE's account-link flow.

Asking to link (a message, or the "link" button) gets the member-site link carrying a
fresh link token; a member number typed in chat links nothing and gets the same link
with a word on why. The `accountLink` event completes a link once its nonce redeems,
and moves the member: one member per customer and one customer per member
(docs/interfaces.md § Account link). Member ids appear only as their keyed hash.
"""

from __future__ import annotations

from sqlalchemy import select

from services.chat_agent import metrics
from services.chat_agent.conversation.turn import Turn
from services.chat_agent.linking.requests import record_link_token, redeem_nonce
from services.chat_agent.models import PRODUCER, Customer, Outbox
from shared.events import CustomerLinked, CustomerUnlinked
from shared.outbox import add_event


def start_link(turn: Turn, typed_number: bool) -> str:
    """Answer a wish to link with the member-site link (or why there is none now)."""
    lines = [turn.line("link_by_number")] if typed_number else []
    start = turn.link_start
    if start is None or start.token is None or start.url is None:
        lines.append(turn.line("link_unavailable"))
    else:
        record_link_token(turn.session, start.token, turn.customer.customer_id, turn.now)
        lines.append(turn.line("link_prompt", url=start.url))
    turn.reply("link", lines)
    return "answered"


def complete_link(turn: Turn, stale: bool) -> str:
    """An `accountLink` event: redeem its nonce and, if it holds, link the member."""
    link = turn.event.link
    redemption = redeem_nonce(
        turn.session,
        link.nonce if link else "",
        turn.customer.customer_id,
        ok=bool(link and link.result == "ok"),
        at=turn.event_time,
    )
    if redemption.member_hash is None:
        metrics.LINKS.labels("account_link", redemption.refusal or "refused").inc()
        if not stale:
            turn.reply("link", [turn.line("link_failed")])
        return "link_refused"
    move_member(turn, redemption.member_hash)
    metrics.LINKS.labels("account_link", "linked").inc()
    if not stale:
        turn.intent = "linked"
        turn.reply("link", [turn.line("linked")])
    return "linked"


def move_member(turn: Turn, member_hash: str) -> None:
    """Link `member_hash` to this turn's customer, unlinking whoever held either side."""
    customer, session = turn.customer, turn.session
    holder = session.execute(
        select(Customer)
        .where(Customer.member_hash == member_hash, Customer.customer_id != customer.customer_id)
        .with_for_update()
    ).scalar_one_or_none()
    if holder is not None:
        holder.member_hash, holder.linked_at = None, None
        _announce_unlinked(turn, holder.customer_id, member_hash)
    earlier = customer.member_hash
    if earlier is not None and earlier != member_hash:
        _announce_unlinked(turn, customer.customer_id, earlier)
        customer.member_hash = None
    # The member leaves its earlier customer before it joins this one (unique column).
    session.flush()
    if customer.member_hash != member_hash:
        customer.member_hash, customer.linked_at = member_hash, turn.now
        turn.announce(
            "customer.linked",
            CustomerLinked(customer_id=customer.customer_id, member_hash=member_hash),
        )


def _announce_unlinked(turn: Turn, customer_id: str, member_hash: str) -> None:
    add_event(
        turn.session,
        Outbox,
        "customer.unlinked",
        CustomerUnlinked(customer_id=customer_id, member_hash=member_hash),
        key=customer_id,
        producer=PRODUCER,
    )
