"""Consent across topics (docs/architecture.md § Consent across topics): the later word
counts, the chat agent's ask or the opt-out the engine's copy holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from services.campaign_engine.decisions.consent import refuses
from services.campaign_engine.decisions.inputs import CustomerState
from services.campaign_engine.models import Customer
from shared.db import unit_of_work
from shared.events import Envelope, OfferRequested, payload_as
from tests.unit.campaign_engine.fakes import active_campaign, offer_request

ASKED = datetime.fromisoformat("2026-11-29T12:00:00+00:00")
SECOND = timedelta(seconds=1)


def _request(drop_id: str | None = None) -> OfferRequested:
    return payload_as(offer_request(), OfferRequested).model_copy(update={"drop_id": drop_id})


@pytest.mark.parametrize(
    ("customer", "drop_id", "asked_at", "refused"),
    [
        (CustomerState(opted_out=False), None, ASKED, False),
        (CustomerState(opted_out=False), "drp_1", ASKED, False),
        # The chat agent asked after the opt-out the copy holds: the opt-in is on its way.
        (CustomerState(opted_out=True, consent_at=ASKED - SECOND), None, ASKED, False),
        # The opt-out came after the ask (or at the same instant): it counts.
        (CustomerState(opted_out=True, consent_at=ASKED + SECOND), None, ASKED, True),
        (CustomerState(opted_out=True, consent_at=ASKED), None, ASKED, True),
        # When either time is not known, the copy's opt-out counts.
        (CustomerState(opted_out=True, consent_at=None), None, ASKED, True),
        (CustomerState(opted_out=True, consent_at=ASKED - SECOND), None, None, True),
        # A drop's request is the engine's own: its copy decides.
        (CustomerState(opted_out=True, consent_at=ASKED - SECOND), "drp_1", ASKED, True),
    ],
)
def test_the_later_word_counts(
    customer: CustomerState, drop_id: str | None, asked_at: datetime | None, refused: bool
) -> None:
    assert refuses(customer, _request(drop_id), asked_at) is refused


def _opted_out(sessions: Callable[[], Session], request: Envelope, at: datetime) -> None:
    with unit_of_work(sessions) as session:
        session.add(Customer(customer_id=request.key, opted_out=True, consent_at=at))


@pytest.mark.parametrize(
    ("opted_out_before_asking", "arm", "reason"),
    [(True, "treatment", "exploit"), (False, "none", "opted_out")],
)
def test_a_chat_request_made_after_the_opt_out_the_engine_holds_is_decided(
    decide: Callable[[Envelope], Any],
    sessions: Callable[[], Session],
    opted_out_before_asking: bool,
    arm: str,
    reason: str,
) -> None:
    """The customer opted back in and asked at once; the opt-in has not reached the
    engine's copy. The engine reads the ask's time from its envelope (`occurred_at`)."""
    active_campaign(sessions)
    request = offer_request()
    shift = -SECOND if opted_out_before_asking else SECOND
    _opted_out(sessions, request, request.occurred_at + shift)

    decision = decide(request)

    assert (decision.arm, decision.reason) == (arm, reason)
    assert (decision.coupon_code is not None) is opted_out_before_asking
