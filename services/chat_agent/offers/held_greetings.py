"""Held greetings: a follow greeting that waited `hold_s` for its offer goes out alone.

The offer request stays open; when the decision comes later it is pushed on its own
(`offers.decisions`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent.delivery import queue
from services.chat_agent.line import messages
from services.chat_agent.models import Customer, OfferRequest
from services.chat_agent.persona import Persona
from shared.db import unit_of_work


def release_held_greetings(
    *,
    sessions: Callable[[], Session],
    persona: Persona,
    clock: Callable[[], datetime],
    kick: Callable[[], None],
    limit: int = 50,
) -> int:
    """Send held greetings whose offer did not come in time; returns how many were sent."""
    now = clock()
    released = 0
    with unit_of_work(sessions) as session:
        requests = (
            session.execute(
                select(OfferRequest)
                .where(OfferRequest.status == "pending", OfferRequest.hold_until <= now)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for request in requests:
            request.status = "released"
            customer = session.get(Customer, request.customer_id)
            if customer is None or not customer.followed or not request.lead_messages:
                continue
            quick = messages.quick_reply_items(
                persona.quick_replies(request.language), opted_out=customer.opted_out
            )
            queue.enqueue(
                session,
                customer_id=customer.customer_id,
                line_user_id=customer.line_user_id,
                kind="greeting",
                messages=messages.with_quick_replies(request.lead_messages, quick),
                reply_token=request.reply_token,
                reply_deadline=request.reply_deadline,
                now=now,
            )
            released += 1
    if released:
        kick()
    return released
