"""Whether a customer's consent refuses an offer request (docs/architecture.md § Consent
across topics).

Consent is the chat agent's (docs/interfaces.md): the engine keeps a copy from
customer.events, which travel on another topic than offer.requests, with no order between
the two. So the copy may not have an opt-in yet when a request made after it arrives.
The chat agent asks only for a customer opted in at that moment, so a request it made
after the opt-out the copy holds is its to vouch for; an opt-out made after the ask (or
one whose time is not known) refuses it. A drop's request is the engine's own (its
audience was read from this copy): the copy decides.
"""

from __future__ import annotations

from datetime import datetime

from services.campaign_engine.decisions.inputs import CustomerState
from shared.events import OfferRequested


def refuses(customer: CustomerState, request: OfferRequested, asked_at: datetime | None) -> bool:
    """True when the request gets no offer because the customer opted out."""
    if not customer.opted_out:
        return False
    if request.drop_id is not None or asked_at is None or customer.consent_at is None:
        return True
    return customer.consent_at >= asked_at
