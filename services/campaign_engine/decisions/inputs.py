"""What a decision reads from the database, in one round trip: whether the request was
decided before, the customer's consent, and which campaigns are live now.

Live campaigns come back as (campaign_id, revision) pairs; the full campaigns (offers,
budgets, audience: JSON) are loaded only when a revision changed, and otherwise served
from a per-process cache. Every change of a campaign bumps its revision in the same
transaction, so the cache is never stale past the change's commit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, literal, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import Campaign, Customer, Decision


@dataclass(frozen=True)
class CustomerState:
    """The customer's consent and card linkage (customer.events)."""

    opted_out: bool = False
    linked: bool = False


@dataclass(frozen=True)
class DecisionInputs:
    """What a decision reads from the database."""

    decided: bool
    customer: CustomerState
    campaigns: list[Campaign]


class ActiveCampaigns:
    """Campaigns by id, reloaded when their revision changes; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, Campaign] = {}

    def resolve(self, session: Session, live: Sequence[tuple[str, int]]) -> list[Campaign]:
        """The campaigns named, loading those missing or behind their revision."""
        with self._lock:
            cache = dict(self._cache)
        stale = [
            cid for cid, revision in live if cid not in cache or cache[cid].revision != revision
        ]
        if stale:
            loaded = session.execute(
                select(Campaign).where(Campaign.campaign_id.in_(stale))
            ).scalars()
            for campaign in loaded:
                session.expunge(campaign)  # a read-only copy, kept across sessions
                cache[campaign.campaign_id] = campaign
        ids = {cid for cid, _ in live}
        with self._lock:
            self._cache = {cid: c for cid, c in cache.items() if cid in ids}
        return sorted((cache[cid] for cid in ids if cid in cache), key=lambda c: c.number)


def read_inputs(
    session: Session, request_id: str, customer_id: str, now: datetime, campaigns: ActiveCampaigns
) -> DecisionInputs:
    """Read everything a decision needs from the database in one statement."""
    decided = select(Decision.decision_id).where(Decision.request_id == request_id)
    opted_out = select(Customer.opted_out).where(Customer.customer_id == customer_id)
    linked = select(Customer.linked).where(Customer.customer_id == customer_id)
    one = select(literal(1).label("one")).subquery()
    rows = session.execute(
        select(
            decided.scalar_subquery(),
            opted_out.scalar_subquery(),
            linked.scalar_subquery(),
            Campaign.campaign_id,
            Campaign.revision,
        )
        .select_from(one)
        .outerjoin(
            Campaign,
            and_(Campaign.status == "active", Campaign.starts_at <= now, Campaign.ends_at > now),
        )
    ).all()
    first = rows[0]
    live = [(r[3], int(r[4])) for r in rows if r[3] is not None]
    return DecisionInputs(
        decided=first[0] is not None,
        customer=CustomerState(bool(first[1]), bool(first[2])),
        campaigns=campaigns.resolve(session, live) if live else [],
    )
