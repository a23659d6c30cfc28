"""Thanking a customer once their coupon is redeemed (`coupon.redeemed`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent.delivery import queue
from services.chat_agent.line import messages
from services.chat_agent.models import Customer, OfferRequest, ProcessedEvent
from services.chat_agent.persona import Persona
from shared.db import unit_of_work
from shared.events import CouponRedeemed, Envelope, payload_as, supported_language
from shared.idempotency import first_time

COUPONS_CONSUMER = "chat_agent.coupons"
# What the thank-you calls the coupon when the request that brought it is not known.
_GENERIC_TITLE = {"ja": "クーポン", "en": "coupon", "id": "kupon"}


def thank_for_redemption(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    persona: Persona,
    tone_of: Callable[[str, datetime], str],
    clock: Callable[[], datetime],
    kick: Callable[[], None],
) -> None:
    """Push a thank-you naming the offer; nothing for a customer who left or opted out.

    The tracker names the customer from its copy of the coupon's issue; a coupon paid before
    that copy reached it comes without one. The customer the clerk gave a chat coupon to is
    then the one thanked (found by the code); a drop's coupon is not looked up (its code is
    not indexed here), so it gets no thank-you then."""
    redeemed = payload_as(envelope, CouponRedeemed)
    now = clock()
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, COUPONS_CONSUMER, envelope.event_id):
            return
        request = session.execute(
            select(OfferRequest).where(OfferRequest.coupon_code == redeemed.code).limit(1)
        ).scalar_one_or_none()
        customer_id = redeemed.customer_id or (request.customer_id if request else None)
        if customer_id is None:
            return  # redeemed by someone tenin cannot message
        customer = session.get(Customer, customer_id)
        if customer is None or not customer.followed or customer.opted_out:
            return  # opted out: the clerk no longer messages first
        language = customer.language
        title = request.coupon_title if request and request.coupon_title else None
        line = persona.line(
            "thanks_after_redemption",
            language,
            tone_of(customer.customer_id, now),
            str(envelope.event_id),
            title=title or _GENERIC_TITLE[supported_language(language)],
        )
        quick = messages.quick_reply_items(persona.quick_replies(language), opted_out=False)
        queue.enqueue(
            session,
            customer_id=customer.customer_id,
            line_user_id=customer.line_user_id,
            kind="thanks",
            messages=messages.with_quick_replies([messages.text(line)], quick),
            now=now,
        )
    kick()
