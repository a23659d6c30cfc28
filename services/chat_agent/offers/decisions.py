"""Delivering the campaign engine's answer (`offer.decided`) to the customer who asked.

The decision goes out with the held greeting if there is one, by the reply API while the
asking event's reply token is fresh and by push after: the coupon (pitch, discount line
and QR image), a kind word for a deals request without one, or just the greeting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.delivery import queue
from services.chat_agent.delivery.handoff import Handoff, enqueue_claimed
from services.chat_agent.delivery.outcomes import Claim
from services.chat_agent.line import messages
from services.chat_agent.models import Customer, OfferRequest, ProcessedEvent
from services.chat_agent.persona import Persona
from shared.db import unit_of_work
from shared.events import Envelope, OfferDecided, payload_as
from shared.idempotency import first_time

log = structlog.get_logger(__name__)

OFFERS_CONSUMER = "chat_agent.offers"
# Why there is no coupon → what the clerk says to a deals request (else "not today").
_NO_COUPON_LINES = {"budget_exhausted": "budget_exhausted", "opted_out": "already_opted_out"}


def deliver_decision(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    persona: Persona,
    tone_of: Callable[[str, datetime], str],
    public_base_url: str,
    clock: Callable[[], datetime],
    kick: Callable[[], None],
    handoff: Handoff | None = None,
) -> None:
    """Deliver an `offer.decided`: the coupon, a kind word, or just the held greeting.

    The customer is waiting: with a delivery loop attached to `handoff`, the message is
    queued claimed and handed to it in memory after the commit (delivery/handoff.py).
    """
    decision = payload_as(envelope, OfferDecided)
    now = clock()
    sent = False
    claimed: Claim | None = None
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, OFFERS_CONSUMER, envelope.event_id):
            return
        request = session.get(OfferRequest, decision.request_id, with_for_update=True)
        if request is None or request.status == "decided":
            return  # another service's request, or already answered
        customer = session.get(Customer, request.customer_id)
        held = request.status == "pending"
        request.status, request.decided_at = "decided", now
        metrics.OFFERS.labels("decided", decision.arm).inc()
        if customer is None or not customer.followed:
            return
        language = request.language
        tone = tone_of(customer.customer_id, now)
        batch: list[dict[str, Any]] = list(request.lead_messages or []) if held else []
        kind, coupon = "no_offer", decision.coupon
        if coupon is not None and customer.opted_out:
            log.info(
                "offer_suppressed_opted_out",
                customer_id=customer.customer_id,
                request_id=request.request_id,
            )
            coupon = None
        if coupon is not None:
            pitch = persona.line(
                "offer_pitch",
                language,
                tone,
                request.request_id,
                title=coupon.title,
                expires=messages.format_expiry(coupon.expires_at, language),
                code=coupon.code,
            )
            batch += messages.coupon_messages(pitch, coupon, language, public_base_url)
            request.coupon_code, request.coupon_title = coupon.code, coupon.title[:200]
            kind = "coupon"
        elif request.trigger == "deals":
            line_kind = _NO_COUPON_LINES.get(decision.reason or "", "no_coupon_today")
            if customer.opted_out:
                line_kind = "already_opted_out"
            batch.append(messages.text(persona.line(line_kind, language, tone, request.request_id)))
        if not batch:
            return
        quick = messages.quick_reply_items(
            persona.quick_replies(language), opted_out=customer.opted_out
        )
        fields = queue.DeliveryFields(
            customer_id=customer.customer_id,
            line_user_id=customer.line_user_id,
            kind=kind,
            messages=messages.with_quick_replies(batch, quick),
            reply_token=request.reply_token if held else None,
            reply_deadline=request.reply_deadline if held else None,
            request_id=request.request_id,
            campaign_id=decision.campaign_id if coupon is not None else None,
            coupon_code=coupon.code if coupon is not None else None,
            now=now,
        )
        lease_s = handoff.lease_s if handoff is not None else None
        if handoff is not None and lease_s is not None:
            claimed = enqueue_claimed(session, lease_s, **fields)
        else:
            queue.enqueue(session, **fields)
        sent = True
    if claimed is not None and handoff is not None:
        handoff.hand(claimed)
    elif sent:
        kick()
