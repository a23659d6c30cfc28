"""Offers: asking the campaign engine, delivering its decision, and what follows.

A deals request or a first greeting while a campaign runs publishes `offer.requested`
and sends nothing yet: the reply token is kept with the request, so the decision can go
out by the (free) reply API if it arrives while the token is fresh, and by push after.
A follow greeting waits with the request at most `hold_s`; then it goes alone and the
offer follows by push when it comes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select

from services.chat_agent import delivery, messages, metrics
from services.chat_agent.chat import PRODUCER, Chat, Turn, tone_of
from services.chat_agent.models import Campaign, Customer, OfferRequest, Outbox, ProcessedEvent
from shared.db import unit_of_work
from shared.events import (
    CampaignStatusChanged,
    CouponRedeemed,
    Envelope,
    OfferContext,
    OfferDecided,
    OfferRequested,
    parse_payload,
)
from shared.idempotency import first_time
from shared.outbox import add_event

log = structlog.get_logger(__name__)

OFFERS_CONSUMER = "chat_agent.offers"
COUPONS_CONSUMER = "chat_agent.coupons"
CAMPAIGNS_CONSUMER = "chat_agent.campaigns"
CAMPAIGN_STATUS_EVENTS = ("campaign.activated", "campaign.paused", "campaign.ended")
_GENERIC_TITLE = {"ja": "クーポン", "en": "coupon", "id": "kupon"}


def request_offer(
    turn: Turn, trigger: str, intent: str, lead: list[str] | None = None
) -> OfferRequest:
    """Record the request (with the reply token) and publish `offer.requested`."""
    request_id = f"rq-{uuid.uuid5(turn.event_id, 'offer.requested')}"
    local = turn.event_time.astimezone(messages.STORE_TZ)
    request = OfferRequest(
        request_id=request_id,
        customer_id=turn.customer.customer_id,
        trigger=trigger,
        language=turn.language,
        reply_token=turn.event.reply_token,
        reply_deadline=turn.reply_deadline if turn.event.reply_token else None,
        hold_until=turn.now + timedelta(seconds=turn.chat.hold_s) if lead else None,
        lead_messages=[messages.text(line) for line in lead] if lead else None,
        status="pending",
    )
    turn.session.add(request)
    context = OfferContext(
        intent=intent,
        sentiment=max(-1.0, min(1.0, turn.mood)),
        language=turn.language if turn.language in ("ja", "en", "id") else "ja",  # type: ignore[arg-type]
        local_hour=local.hour,
        weekday=local.weekday(),
    )
    add_event(
        turn.session,
        Outbox,
        "offer.requested",
        OfferRequested(
            request_id=request_id, customer_id=turn.customer.customer_id, context=context
        ),
        key=turn.customer.customer_id,
        producer=PRODUCER,
    )
    metrics.OFFERS.labels("requested", trigger).inc()
    return request


def handle_decision(chat: Chat, envelope: Envelope) -> None:
    """Deliver an `offer.decided`: the coupon, a kind word, or just the held greeting."""
    decision = parse_payload(envelope)
    assert isinstance(decision, OfferDecided)
    now = chat.clock()
    sent = False
    with unit_of_work(chat.sessions) as session:
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
        tone = tone_of(chat, customer.customer_id, now)
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
            pitch = chat.persona.line(
                "offer_pitch",
                language,
                tone,
                request.request_id,
                title=coupon.title,
                expires=messages.format_expiry(coupon.expires_at, language),
                code=coupon.code,
            )
            batch += messages.coupon_messages(
                pitch, coupon, language, chat.settings.public_base_url
            )
            request.coupon_code, request.coupon_title = coupon.code, coupon.title[:200]
            kind = "coupon"
        elif request.trigger == "deals":
            line_kind = {
                "budget_exhausted": "budget_exhausted",
                "opted_out": "already_opted_out",
            }.get(decision.reason or "", "no_coupon_today")
            if customer.opted_out:
                line_kind = "already_opted_out"
            batch.append(
                messages.text(chat.persona.line(line_kind, language, tone, request.request_id))
            )
        if not batch:
            return
        quick = messages.quick_reply_items(
            chat.persona.quick_replies(language), opted_out=customer.opted_out
        )
        delivery.enqueue(
            session,
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
        sent = True
    if sent:
        chat.kick()


def release_overdue(chat: Chat, limit: int = 50) -> int:
    """Send held greetings whose offer did not come in time; the offer will be pushed."""
    now = chat.clock()
    released = 0
    with unit_of_work(chat.sessions) as session:
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
                chat.persona.quick_replies(request.language), opted_out=customer.opted_out
            )
            delivery.enqueue(
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
        chat.kick()
    return released


def handle_coupon_event(chat: Chat, envelope: Envelope) -> None:
    """Thank the customer after `coupon.redeemed` (other coupon events need nothing)."""
    if envelope.type != "coupon.redeemed":
        return
    redeemed = parse_payload(envelope)
    assert isinstance(redeemed, CouponRedeemed)
    if not redeemed.customer_id:
        return  # redeemed by someone tenin cannot message
    now = chat.clock()
    with unit_of_work(chat.sessions) as session:
        if not first_time(session, ProcessedEvent, COUPONS_CONSUMER, envelope.event_id):
            return
        customer = session.get(Customer, redeemed.customer_id)
        if customer is None or not customer.followed or customer.opted_out:
            return  # opted out: the clerk no longer messages first
        request = session.execute(
            select(OfferRequest).where(OfferRequest.coupon_code == redeemed.code).limit(1)
        ).scalar_one_or_none()
        language = customer.language
        title = request.coupon_title if request and request.coupon_title else None
        line = chat.persona.line(
            "thanks_after_redemption",
            language,
            tone_of(chat, customer.customer_id, now),
            str(envelope.event_id),
            title=title or _GENERIC_TITLE.get(language, "coupon"),
        )
        quick = messages.quick_reply_items(chat.persona.quick_replies(language), opted_out=False)
        delivery.enqueue(
            session,
            customer_id=customer.customer_id,
            line_user_id=customer.line_user_id,
            kind="thanks",
            messages=messages.with_quick_replies([messages.text(line)], quick),
            now=now,
        )
    chat.kick()


def handle_campaign_event(chat: Chat, envelope: Envelope) -> None:
    """Keep chat_agent's copy of which campaigns run (for "a campaign is active")."""
    if envelope.type not in CAMPAIGN_STATUS_EVENTS:
        return
    changed = parse_payload(envelope)
    assert isinstance(changed, CampaignStatusChanged)
    snapshot = changed.campaign
    with unit_of_work(chat.sessions) as session:
        if not first_time(session, ProcessedEvent, CAMPAIGNS_CONSUMER, envelope.event_id):
            return
        row = session.get(Campaign, snapshot.campaign_id, with_for_update=True)
        if row is None:
            row = Campaign(campaign_id=snapshot.campaign_id)
            session.add(row)
        elif row.changed_at > envelope.occurred_at:
            return  # an older status change arriving late
        row.status = snapshot.status
        row.starts_at, row.ends_at = snapshot.starts_at, snapshot.ends_at
        row.changed_at = envelope.occurred_at
