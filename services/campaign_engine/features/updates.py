"""Keeping what the engine knows of a customer current: sales, following, linkage, consent.

sale.recorded and customer.followed / customer.linked / customer.unlinked feed the
customer's features for the model (Redis, behind a once-marker); customer.* also keep the
customers table (consent, following, linkage, language) that a decision reads. Each event
is applied once: its id is recorded in the same transaction as the database effect.

A follow records the customer's *first* follow (`first_followed_at`, kept across
re-follows), so a regular who unfollows and follows again is no "new follower"; an
unlink (the card moved to another customer, docs/interfaces.md § Account link) makes
the customer unlinked again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.campaign_engine.features.markers import Markers, effect_key, once
from services.campaign_engine.features.store import FeatureUpdates
from services.campaign_engine.models import UPDATES_CONSUMER, Customer, ProcessedEvent
from shared.db import unit_of_work, utcnow
from shared.events import (
    CustomerFollowed,
    CustomerLinked,
    CustomerOptedIn,
    CustomerOptedOut,
    CustomerUnfollowed,
    CustomerUnlinked,
    Envelope,
    EventSchemaError,
    SaleRecorded,
    parse_payload,
    payload_as,
)
from shared.idempotency import first_time
from shared.quiet_hours import offset_minutes

CUSTOMER_PAYLOADS = (
    CustomerFollowed,
    CustomerUnfollowed,
    CustomerLinked,
    CustomerUnlinked,
    CustomerOptedOut,
    CustomerOptedIn,
)


def record_sale(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """Count a linked customer's sale in their features, and keep the UTC offset its till
    wrote: the customer's own time for a drop's quiet hours (docs/interfaces.md § Campaign
    drops; the latest sale applied wins)."""
    sale = payload_as(envelope, SaleRecorded)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, UPDATES_CONSUMER, envelope.event_id):
            return
        session.execute(
            update(Customer)
            .where(Customer.customer_id == sale.customer_id)
            .values(utc_offset_minutes=offset_minutes(sale.occurred_at))
        )
        once(
            markers,
            effect_key(envelope.event_id),
            lambda: features.record_sale(
                sale.customer_id, sale.total, sale.occurred_at, list(sale.categories)
            ),
        )


def record_customer_event(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """Consent, following and card linkage from customer.events."""
    payload = parse_payload(envelope)
    if not isinstance(payload, CUSTOMER_PAYLOADS):
        raise EventSchemaError(f"{envelope.type} is not a customer event")
    customer_id = payload.customer_id
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, UPDATES_CONSUMER, envelope.event_id):
            return
        customer = session.get(Customer, customer_id)
        if customer is None:
            customer = Customer(
                customer_id=customer_id, opted_out=False, following=True, linked=False
            )
            session.add(customer)
        customer.updated_at = utcnow()
        marker = effect_key(envelope.event_id)
        if isinstance(payload, CustomerOptedOut | CustomerOptedIn):
            customer.opted_out = isinstance(payload, CustomerOptedOut)
            customer.consent_at = envelope.occurred_at
        elif isinstance(payload, CustomerUnfollowed):
            customer.following = False
        elif isinstance(payload, CustomerFollowed):
            customer.following, customer.language = True, payload.language
            first = payload.first_followed_at or envelope.occurred_at
            once(markers, marker, lambda: features.record_follow(customer_id, first))
        elif isinstance(payload, CustomerLinked):
            customer.linked = True
            once(markers, marker, lambda: features.mark_linked(customer_id))
        elif isinstance(payload, CustomerUnlinked):
            customer.linked = False
            once(markers, marker, lambda: features.mark_unlinked(customer_id))
