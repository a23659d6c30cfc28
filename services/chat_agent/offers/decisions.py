"""Delivering the campaign engine's answer (`offer.decided`) to the customer who asked.

The decision goes out with the held greeting if there is one, by the reply API while the
asking event's reply token is fresh and by push after: the coupon (pitch, discount line
and QR image), a kind word for a deals request without one, or just the greeting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.delivery import queue
from services.chat_agent.delivery.handoff import Handoff, enqueue_claimed
from services.chat_agent.delivery.outcomes import Claim
from services.chat_agent.line import messages
from services.chat_agent.models import Customer, OfferRequest, ProcessedEvent
from services.chat_agent.persona import Persona
from shared.db import HotStatement, unit_of_work
from shared.events import Envelope, IssuedCoupon, OfferDecided, payload_as
from shared.idempotency import first_time

log = structlog.get_logger(__name__)

OFFERS_CONSUMER = "chat_agent.offers"
# Why there is no coupon → what the clerk says to a deals request (else "not today").
_NO_COUPON_LINES = {"budget_exhausted": "budget_exhausted", "opted_out": "already_opted_out"}


@dataclass(frozen=True)
class Asked:
    """What answering a decision needs of its request and of the customer who asked
    (the customer's columns are None when the customer is unknown)."""

    request_id: str
    customer_id: str
    status: str
    trigger: str
    language: str
    lead_messages: list[dict[str, Any]] | None
    reply_token: str | None
    reply_deadline: datetime | None
    line_user_id: str | None
    followed: bool | None
    opted_out: bool | None


# The request, locked, with its customer: one statement, built once (a customer waits;
# two ORM loads and a flush were ~2.6 ms of a ~3.7 ms handler's CPU).
_ASKED = HotStatement(
    select(
        OfferRequest.request_id,
        OfferRequest.customer_id,
        OfferRequest.status,
        OfferRequest.trigger,
        OfferRequest.language,
        OfferRequest.lead_messages,
        OfferRequest.reply_token,
        OfferRequest.reply_deadline,
        Customer.line_user_id,
        Customer.followed,
        Customer.opted_out,
    )
    .outerjoin(Customer, Customer.customer_id == OfferRequest.customer_id)
    .where(OfferRequest.request_id == bindparam("request_id"))
    .with_for_update(of=OfferRequest)
)
_DECIDED = HotStatement(
    update(OfferRequest)
    .where(OfferRequest.request_id == bindparam("asked"))
    .values(
        status="decided",
        decided_at=bindparam("at"),
        coupon_code=func.coalesce(bindparam("code", type_=String), OfferRequest.coupon_code),
        coupon_title=func.coalesce(bindparam("title", type_=String), OfferRequest.coupon_title),
    )
)


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
    claimed: Claim | None = None
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, OFFERS_CONSUMER, envelope.event_id):
            return
        conn = session.connection()
        found = _ASKED.rows(conn, {"request_id": decision.request_id})
        if not found or found[0][2] == "decided":
            return  # another service's request, or already answered
        asked = Asked(*found[0])
        metrics.OFFERS.labels("decided", decision.arm).inc()
        fields, coupon = _answer(asked, decision, persona, tone_of, public_base_url, now)
        decided = {"asked": asked.request_id, "at": now, "code": None, "title": None}
        if coupon is not None:
            decided.update(code=coupon.code, title=coupon.title[:200])
        _DECIDED.rows(conn, decided)
        if fields is None:
            return
        lease_s = handoff.lease_s if handoff is not None else None
        if handoff is not None and lease_s is not None:
            claimed = enqueue_claimed(session, lease_s, **fields)
        else:
            queue.enqueue(session, **fields)
    if claimed is not None and handoff is not None:
        handoff.hand(claimed)
    else:
        kick()


def _answer(
    asked: Asked,
    decision: OfferDecided,
    persona: Persona,
    tone_of: Callable[[str, datetime], str],
    public_base_url: str,
    now: datetime,
) -> tuple[queue.DeliveryFields | None, IssuedCoupon | None]:
    """The delivery that answers the decision (None: nothing to send) and the coupon it
    brings (None when there is none, or the customer opted out since asking)."""
    if asked.line_user_id is None or not asked.followed:
        return None, None
    held = asked.status == "pending"
    language = asked.language
    tone = tone_of(asked.customer_id, now)
    batch: list[dict[str, Any]] = list(asked.lead_messages or []) if held else []
    kind, coupon = "no_offer", decision.coupon
    if coupon is not None and asked.opted_out:
        log.info(
            "offer_suppressed_opted_out",
            customer_id=asked.customer_id,
            request_id=asked.request_id,
        )
        coupon = None
    if coupon is not None:
        pitch = persona.line(
            "offer_pitch",
            language,
            tone,
            asked.request_id,
            title=coupon.title,
            expires=messages.format_expiry(coupon.expires_at, language),
            code=coupon.code,
        )
        batch += messages.coupon_messages(pitch, coupon, language, public_base_url)
        kind = "coupon"
    elif asked.trigger == "deals":
        line_kind = _NO_COUPON_LINES.get(decision.reason or "", "no_coupon_today")
        if asked.opted_out:
            line_kind = "already_opted_out"
        batch.append(messages.text(persona.line(line_kind, language, tone, asked.request_id)))
    if not batch:
        return None, coupon
    quick = messages.quick_reply_items(
        persona.quick_replies(language), opted_out=bool(asked.opted_out)
    )
    fields = queue.DeliveryFields(
        customer_id=asked.customer_id,
        line_user_id=asked.line_user_id,
        kind=kind,
        messages=messages.with_quick_replies(batch, quick),
        reply_token=asked.reply_token if held else None,
        reply_deadline=asked.reply_deadline if held else None,
        request_id=asked.request_id,
        campaign_id=decision.campaign_id if coupon is not None else None,
        coupon_code=coupon.code if coupon is not None else None,
        now=now,
    )
    return fields, coupon
