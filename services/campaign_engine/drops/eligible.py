"""Who a drop goes to: followers who have not unfollowed or opted out and meet both the
campaign's audience and the drop's (docs/interfaces.md § Campaign drops).

Followers are read a page at a time in `customer_id` order, so a drop resumes from the
last id it recorded. Customer features (Redis) are read only when an audience rule needs
them (visits, basket, categories, days since follow).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.decisions.audience import audience_admits
from services.campaign_engine.features.store import FeatureSource
from services.campaign_engine.models import Customer
from shared.events import Language, supported_language
from shared.model.features import CustomerFeatures

# Audience rules answered from the customers table alone.
_TABLE_RULES = frozenset({"languages", "linked_only"})
_PAGE = (
    select(Customer.customer_id, Customer.language, Customer.linked, Customer.utc_offset_minutes)
    .where(Customer.following.is_(True), Customer.opted_out.is_(False))
    .order_by(Customer.customer_id)
)


@dataclass(frozen=True)
class Follower:
    customer_id: str
    language: Language
    utc_offset_minutes: int | None = None  # from their till sales; None: not known


@dataclass(frozen=True)
class Page:
    """The eligible followers of one page, and the last id read (None: nothing was left)."""

    followers: list[Follower]
    last_id: str | None


def needs_features(audiences: Sequence[Mapping[str, Any] | None]) -> bool:
    """Whether any rule of these audiences reads customer features."""
    return any(
        value not in (None, False) and rule not in _TABLE_RULES
        for audience in audiences
        if audience
        for rule, value in audience.items()
    )


def eligible_page(
    session: Session,
    audiences: Sequence[Mapping[str, Any] | None],
    *,
    after: str | None,
    limit: int,
    features: FeatureSource | None,
    now: datetime,
) -> Page:
    """One page of followers after `after`, keeping those every audience admits."""
    query = _PAGE if after is None else _PAGE.where(Customer.customer_id > after)
    rows = session.execute(query.limit(limit)).all()
    if not rows:
        return Page([], None)
    read_features = features is not None and needs_features(audiences)
    kept = []
    for customer_id, language, linked, utc_offset in rows:
        lang = supported_language(language)
        known = (
            features.get(customer_id, now)
            if read_features and features is not None
            else CustomerFeatures(linked=linked)
        )
        if all(audience_admits(a, known, lang, linked) for a in audiences):
            kept.append(Follower(customer_id, lang, utc_offset))
    return Page(kept, rows[-1][0])


def all_eligible(
    session: Session,
    audiences: Sequence[Mapping[str, Any] | None],
    *,
    features: FeatureSource | None,
    now: datetime,
    page_size: int = 5000,
) -> Iterator[Follower]:
    """Every eligible follower (a dry run's count)."""
    after: str | None = None
    while True:
        page = eligible_page(
            session, audiences, after=after, limit=page_size, features=features, now=now
        )
        if page.last_id is None:
            return
        yield from page.followers
        after = page.last_id
