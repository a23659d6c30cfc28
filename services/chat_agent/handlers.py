"""The registry: which function handles each event type chat_agent consumes.

Each handler is a plain function in its concept's package, given the dependencies it
names; the worker turns the registry into each consumer group's handler with
`shared.consumer.route_by_type` (docs/interfaces.md § Events). Types a topic carries
that are not listed here (`coupon.delivered`, `coupon.voided`,
`campaign.budget_exhausted`, …) are other services' concern and are skipped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TypedDict

from sqlalchemy.orm import Session

from services.chat_agent.bootstrap import Dependencies
from services.chat_agent.conversation.inbound import handle_inbound
from services.chat_agent.conversation.state import tone_of
from services.chat_agent.drops.pushes import deliver_drop_decision, deliver_drop_decisions
from services.chat_agent.drops.schedules import record_drop_cancelled, record_drop_queued
from services.chat_agent.offers.campaigns import CAMPAIGN_STATUS_EVENTS, record_campaign_status
from services.chat_agent.offers.decisions import deliver_decision
from services.chat_agent.offers.thanks import thank_for_redemption
from services.chat_agent.persona import Persona
from shared.consumer import Handler
from shared.events import Envelope


class Messaging(TypedDict):
    """What every handler that may message a customer is given."""

    sessions: Callable[[], Session]
    persona: Persona
    clock: Callable[[], datetime]
    kick: Callable[[], None]


def messaging(deps: Dependencies) -> Messaging:
    """The database, the clerk's voice, the clock, and the delivery loop's bell."""
    return Messaging(
        sessions=deps.sessions, persona=deps.persona(), clock=deps.clock, kick=deps.kick
    )


def handlers(deps: Dependencies) -> dict[str, Handler]:
    """Event type → handler. Building it loads the understanding model and the persona."""
    sends = messaging(deps)
    tone = functools.partial(tone_of, deps.conversations)
    campaign_status = functools.partial(record_campaign_status, sessions=deps.sessions)
    return {
        # chat.inbound
        "line.webhook_event": functools.partial(
            handle_inbound,
            **sends,
            conversations=deps.conversations,
            understanding=deps.understanding(),
            secret_key=deps.settings.pseudonym_key,
            pacing=deps.pacing,
            links=deps.links,
            limiter=deps.limiter,
            user_messages=deps.limits["line_user"],
        ),
        # offer.decisions: a drop's coupon is pushed (drops/pushes.py), any other answered
        "offer.decided": by_drop(
            functools.partial(
                deliver_drop_decision,
                **sends,
                public_base_url=deps.settings.public_base_url,
                handoff=deps.handoff,
            ),
            functools.partial(
                deliver_decision,
                **sends,
                tone_of=tone,
                public_base_url=deps.settings.public_base_url,
                handoff=deps.handoff,
            ),
        ),
        # coupon.events
        "coupon.redeemed": functools.partial(thank_for_redemption, **sends, tone_of=tone),
        # campaign.events
        **dict.fromkeys(CAMPAIGN_STATUS_EVENTS, campaign_status),
        "drop.queued": functools.partial(
            record_drop_queued, sessions=deps.sessions, clock=deps.clock
        ),
        "drop.cancelled": functools.partial(record_drop_cancelled, sessions=deps.sessions),
    }


def offer_batches(deps: Dependencies, one: Handler) -> Callable[[list[Envelope]], None]:
    """The offers group's batch handler: a poll's drop decisions in one transaction
    (drops/pushes.py), every other message through `one`, in order."""
    drops = functools.partial(
        deliver_drop_decisions,
        **messaging(deps),
        public_base_url=deps.settings.public_base_url,
        handoff=deps.handoff,
        grown=deps.drop_tables_grown.added,
    )

    def handle(envelopes: list[Envelope]) -> None:
        of_drops = [e for e in envelopes if _is_drop_decision(e)]
        if of_drops:
            drops(of_drops)
        for envelope in envelopes:
            if not _is_drop_decision(envelope):
                one(envelope)

    return handle


def _is_drop_decision(envelope: Envelope) -> bool:
    return envelope.type == "offer.decided" and bool(envelope.payload.get("drop_id"))


def by_drop(drop: Handler, other: Handler) -> Handler:
    """`drop` for an offer.decided a campaign drop asked for, `other` for the rest."""

    def handle(envelope: Envelope) -> None:
        if _is_drop_decision(envelope):
            drop(envelope)
        else:
            other(envelope)

    return handle
