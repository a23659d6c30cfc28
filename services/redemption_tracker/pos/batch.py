"""A batch in flight: its transactions, their coupon outcomes, and what it loads.

`load_copies` reads, in three queries for the whole batch, what the coupon checks need
from the tracker's copies (campaign terms by number, decision terms by code, customer
links by member hash); on PostgreSQL the three go together in one psycopg pipeline (one
round trip). The pre-check reads the same terms one code at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from services.redemption_tracker.models import Campaign, CustomerLink, Decision
from services.redemption_tracker.pos.checks import (
    CampaignTerms,
    DecisionTerms,
    Presented,
    campaign_terms,
)
from services.redemption_tracker.pos.schemas import PosTransaction
from services.redemption_tracker.sql import any_param, table_of


@dataclass(slots=True)
class Outcome:
    """One presented coupon: rejected until the checks, the claim and the budget pass."""

    raw: str
    status: str = "rejected"
    reason: str | None = None
    discount: int = 0
    code: str | None = None
    campaign: CampaignTerms | None = None
    campaign_id: str | None = None
    offer_id: str | None = None
    customer_id: str | None = None
    redemption_id: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "code": self.raw,
            "status": self.status,
            "reason": self.reason,
            "discount": self.discount,
        }


@dataclass(slots=True)
class BatchTx:
    """One transaction of a batch, prepared (member hashed, codes read) for writing."""

    index: int
    tx: PosTransaction
    member_hash: str | None
    fingerprint: str
    presented: list[Presented]
    items: str  # the items as JSON text, stored as is
    row_id: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class BatchCopies:
    """What a batch needs from the tracker's copies."""

    campaigns: dict[int, CampaignTerms] = field(default_factory=dict)  # by campaign number
    decisions: dict[str, DecisionTerms] = field(default_factory=dict)  # by canonical code
    links: dict[str, str] = field(default_factory=dict)  # member hash → customer_id


def terms_of(row: Campaign | Row[Any]) -> CampaignTerms:
    """A campaign copy as typed terms."""
    return campaign_terms(
        campaign_id=row.campaign_id,
        number=row.number,
        status=row.status,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        offers=row.offers,
        budget=row.budget,
        share_basis=row.share_basis,
        share_bp=row.share_bp,
    )


def decision_terms(row: Decision | Row[Any]) -> DecisionTerms:
    """A decision copy as the terms its coupon was issued on."""
    discount: dict[str, Any] = row.discount or {}
    return DecisionTerms(
        customer_id=row.customer_id,
        valid_from=row.valid_from,
        min_basket=row.min_basket,
        discount_type=discount.get("type"),
        discount_value=int(discount["value"]) if "value" in discount else None,
    )


@lru_cache(maxsize=4)
def _statements(dialect: Dialect) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """The three reads of `load_copies`, built once per dialect (values are parameters)."""
    campaigns, decisions, links = (table_of(m) for m in (Campaign, Decision, CustomerLink))
    return (
        select(campaigns).where(campaigns.c.number.in_(bindparam("numbers", expanding=True))),
        select(decisions).where(any_param(dialect, decisions.c.code, "codes")),
        select(links.c.member_hash, links.c.customer_id).where(
            any_param(dialect, links.c.member_hash, "hashes")
        ),
    )


def load_campaign_by_number(s: Session, numbers: set[int]) -> dict[int, CampaignTerms]:
    """Campaign terms by the number coupon codes carry."""
    if not numbers:
        return {}
    stmt = _statements(s.get_bind().dialect)[0]
    rows = s.connection().execute(stmt, {"numbers": sorted(numbers)})
    return {row.number: terms_of(row) for row in rows}


def load_decisions(s: Session, codes: set[str]) -> dict[str, DecisionTerms]:
    """Decision terms by coupon code (absent when the decision has not arrived yet)."""
    if not codes:
        return {}
    stmt = _statements(s.get_bind().dialect)[1]
    rows = s.connection().execute(stmt, {"codes": sorted(codes)})
    return {row.code: decision_terms(row) for row in rows if row.code}


def load_copies(s: Session, txs: Sequence[BatchTx]) -> BatchCopies:
    """Three queries for the whole batch, never one per transaction.

    On PostgreSQL in one round trip (`_pipelined`); elsewhere Core statements, built once,
    on the session's connection: the ORM's per-statement work (entity loading, identity
    map) bought nothing here, for a read-only copy.
    """
    numbers = {p.claims.campaign_no for t in txs for p in t.presented if p.claims}
    codes = {p.code for t in txs for p in t.presented if p.claims and p.code}
    hashes = sorted({t.member_hash for t in txs if t.member_hash})
    if s.get_bind().dialect.name == "postgresql":
        return _pipelined(s, sorted(numbers), sorted(codes), hashes)
    links: dict[str, str] = {}
    if hashes:
        stmt = _statements(s.get_bind().dialect)[2]
        links = {
            member: customer
            for member, customer in s.connection().execute(stmt, {"hashes": hashes})
        }
    return BatchCopies(load_campaign_by_number(s, numbers), load_decisions(s, codes), links)


@lru_cache(maxsize=1)
def _reads() -> tuple[str, str, str]:
    """The three reads of `load_copies` as psycopg statements (values as arrays)."""
    campaigns, decisions, links = (table_of(m).fullname for m in (Campaign, Decision, CustomerLink))
    return (
        "SELECT campaign_id, number, status, starts_at, ends_at, offers, budget, share_basis,"
        f" share_bp FROM {campaigns} WHERE number = ANY(%s::integer[])",
        "SELECT code, customer_id, valid_from, min_basket, discount"
        f" FROM {decisions} WHERE code = ANY(%s::varchar[])",
        f"SELECT member_hash, customer_id FROM {links} WHERE member_hash = ANY(%s::varchar[])",
    )


def _pipelined(s: Session, numbers: list[int], codes: list[str], hashes: list[str]) -> BatchCopies:
    """`load_copies` on PostgreSQL: the three reads sent together, one round trip.

    On the session's psycopg connection (psycopg's pipeline mode), rows as named tuples:
    the same values SQLAlchemy gives (JSON as Python values, aware datetimes).
    """
    dbapi: Any = s.connection().connection.dbapi_connection
    wanted = [
        (sql, values)
        for sql, values in zip(_reads(), (numbers, codes, hashes), strict=True)
        if values
    ]
    cursors = [dbapi.cursor(row_factory=namedtuple_row) for _ in wanted]
    try:
        with dbapi.pipeline():
            for cursor, (sql, values) in zip(cursors, wanted, strict=True):
                cursor.execute(sql, (values,))
        found = iter([c.fetchall() for c in cursors])
    finally:
        for cursor in cursors:
            cursor.close()
    copies = BatchCopies()
    if numbers:
        copies.campaigns = {row.number: terms_of(row) for row in next(found)}
    if codes:
        copies.decisions = {row.code: decision_terms(row) for row in next(found) if row.code}
    if hashes:
        copies.links = dict(next(found))
    return copies
