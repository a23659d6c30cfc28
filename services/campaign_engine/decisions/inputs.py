"""What a decision batch reads from the database, in one round trip: which requests were
decided before, each customer's consent, and which campaigns are live now.

Live campaigns come back as (campaign_id, revision) pairs; the full campaigns (offers,
budgets, audience: JSON) are loaded only when a revision changed, and otherwise served
from a per-process cache. Every change of a campaign bumps its revision in the same
transaction, so the cache is never stale past the change's commit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from services.campaign_engine.models import Campaign, Customer, Decision, Drop, DropMember
from shared.db import DriverStatement, UTCDateTime


@dataclass(frozen=True)
class CustomerState:
    """The customer's consent and card linkage (customer.events)."""

    opted_out: bool = False
    linked: bool = False
    consent_at: datetime | None = None  # when the consent last changed, if known


@dataclass(frozen=True)
class DecisionInputs:
    """What a decision batch reads from the database."""

    decided: set[str]  # request ids already decided
    customers: dict[str, CustomerState]  # by customer id; a customer never seen is absent
    campaigns: list[Campaign]
    # A drop's request → its drop's campaign, or None when the drop was cancelled (or
    # failed) since it asked (docs/interfaces.md § Campaign drops).
    drop_campaigns: dict[str, str | None] = field(default_factory=dict)

    def customer(self, customer_id: str) -> CustomerState:
        return self.customers.get(customer_id, CustomerState())

    def campaigns_for(self, request_id: str, drop_id: str | None) -> list[Campaign] | None:
        """The live campaigns this request may be offered: all of them, or only its drop's
        campaign for a drop's request; None when its drop was cancelled."""
        if drop_id is None or request_id not in self.drop_campaigns:
            return self.campaigns  # not a drop's, or a drop member this database never had
        campaign_id = self.drop_campaigns[request_id]
        if campaign_id is None:
            return None
        return [c for c in self.campaigns if c.campaign_id == campaign_id]


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


def _member_of(column: Any, name: str, postgresql: bool) -> ColumnElement[bool]:
    """`column = ANY(:name)` with one array parameter on PostgreSQL: the statement's text
    never changes with the batch size, so psycopg converts and PostgreSQL plans it once;
    elsewhere an IN list expanded at execution."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


# A typed NULL: the union's column takes its type (and so its result processing) from here.
_NO_TIME = cast(null(), UTCDateTime())


def _inputs_statement(postgresql: bool) -> CompoundSelect:
    """Decided request ids, customers' consent (and when it changed) and link, and the live
    campaigns."""
    return union_all(
        select(
            literal_column("'d'").label(_KIND),
            Decision.request_id.label(_ID),
            literal_column("0").label(_A),
            literal_column("0").label(_B),
            _NO_TIME.label(_AT),
        ).where(_member_of(Decision.request_id, "request_ids", postgresql)),
        select(
            literal_column("'c'"),
            Customer.customer_id,
            cast(Customer.opted_out, Integer),
            cast(Customer.linked, Integer),
            Customer.consent_at,
        ).where(_member_of(Customer.customer_id, "customer_ids", postgresql)),
        select(
            literal_column("'k'"),
            Campaign.campaign_id,
            Campaign.revision,
            literal_column("0"),
            _NO_TIME,
        ).where(
            Campaign.status == "active",
            Campaign.starts_at <= bindparam("now", type_=UTCDateTime()),
            Campaign.ends_at > bindparam("now", type_=UTCDateTime()),
        ),
    )


def _drops_asking_statement(postgresql: bool) -> Select[str, str, str]:
    return (
        select(DropMember.request_id, Drop.campaign_id, Drop.status)
        .join(Drop, Drop.drop_id == DropMember.drop_id)
        .where(_member_of(DropMember.request_id, "request_ids", postgresql))
    )


# Built once per dialect (docs/architecture.md § Decisions): one statement for a whole
# batch, its compiled form cached by SQLAlchemy.
_KIND, _ID, _A, _B, _AT = "kind", "id", "a", "b", "at"
# On PostgreSQL they run on the transaction's psycopg connection (shared.db.DriverStatement).
_INPUTS = _inputs_statement(False)
_DROPS_ASKING = _drops_asking_statement(False)
_PG_INPUTS = DriverStatement(_inputs_statement(True))
_PG_DROPS_ASKING = DriverStatement(_drops_asking_statement(True))
_DROP_STOPPED = ("cancelled", "failed")


def read_inputs(
    session: Session,
    request_ids: Sequence[str],
    customer_ids: Sequence[str],
    now: datetime,
    campaigns: ActiveCampaigns,
    drop_request_ids: Sequence[str] = (),
) -> DecisionInputs:
    """Read everything a decision batch needs from the database in one statement: which
    requests are decided, each customer's consent and card link, the live campaigns; and,
    for a batch with drop requests, one more for their drops' campaigns."""
    conn = session.connection()
    postgresql = conn.dialect.name == "postgresql"
    params = {"request_ids": list(request_ids), "customer_ids": list(customer_ids), "now": now}
    rows = _PG_INPUTS.rows(conn, params) if postgresql else conn.execute(_INPUTS, params).all()
    decided: set[str] = set()
    customers: dict[str, CustomerState] = {}
    live: list[tuple[str, int]] = []
    for kind, key, a, b, at in rows:
        if kind == "d":
            decided.add(key)
        elif kind == "c":
            customers[key] = CustomerState(bool(a), bool(b), at)
        else:
            live.append((key, int(a)))
    drop_campaigns: dict[str, str | None] = {}
    if drop_request_ids:
        asking = {"request_ids": list(drop_request_ids)}
        asked = (
            _PG_DROPS_ASKING.rows(conn, asking)
            if postgresql
            else conn.execute(_DROPS_ASKING, asking).all()
        )
        drop_campaigns = {
            request_id: None if status in _DROP_STOPPED else campaign_id
            for request_id, campaign_id, status in asked
        }
    return DecisionInputs(
        decided=decided,
        customers=customers,
        campaigns=campaigns.resolve(session, live) if live else [],
        drop_campaigns=drop_campaigns,
    )
