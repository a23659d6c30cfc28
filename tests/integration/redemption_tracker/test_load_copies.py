"""A batch's three reads in one psycopg pipeline give what the SQLAlchemy reads give.

pos/batch.py `load_copies` on PostgreSQL sends the campaign, decision and link reads
together; the pre-check (and SQLite) reads the same copies through SQLAlchemy Core.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CustomerLink
from services.redemption_tracker.pos.batch import (
    BatchTx,
    load_campaign_by_number,
    load_copies,
    load_decisions,
)
from services.redemption_tracker.pos.prepare import prepare
from services.redemption_tracker.pos.schemas import PosTransaction
from shared.crypto import member_hash
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    apply,
    decision_event,
    linked_event,
    now,
    offer,
    tx,
    uid,
)


def _batch(tracker: Tracker, bodies: list[dict]) -> list[BatchTx]:
    ready = [(i, PosTransaction.model_validate(b)) for i, b in enumerate(bodies)]
    return prepare(tracker.pseudonym_secret, tracker.coupon_keys, ready)


def test_the_pipelined_reads_equal_the_core_reads(tracker: Tracker) -> None:
    a = CampaignSpec(
        tracker,
        offers=[offer(0), offer(1, min_basket=700, discount={"type": "percent", "value": 10})],
        budget={"max_redemptions": 5, "max_discount_total": 9000, "max_coupons": None},
    )
    b = CampaignSpec(tracker, revenue_share={"pct": 3, "basis": "incremental"})
    with_decision, without_decision, other = a.code(), a.code(offer_index=1), b.code()
    customer = uid("c_")
    apply(
        tracker,
        decision_event(
            customer,
            a.campaign_id,
            "treatment",
            with_decision,
            valid_from=now() - timedelta(hours=2),
            min_basket=500,
            discount={"type": "percent", "value": 15},
        ),
    )
    members = [uid("M"), uid("M"), uid("M")]
    for m in members[:2]:
        apply(tracker, linked_event(tracker, uid("c_"), m))
    txs = _batch(
        tracker,
        [
            tx(coupons=[with_decision, without_decision], member_id=members[0]),
            tx(coupons=[other, "TN-JUNK"], member_id=members[1]),
            tx(member_id=members[2]),  # not linked
            tx(),
        ],
    )
    with tracker.sessions() as s:
        piped = load_copies(s, txs)
        numbers = {a.number, b.number}
        assert piped.campaigns == load_campaign_by_number(s, numbers)
        assert set(piped.campaigns) == numbers
        assert piped.campaigns[a.number].offers[1].min_basket == 700
        assert piped.campaigns[a.number].max_discount_total == 9000
        codes = {p.code for t in txs for p in t.presented if p.claims and p.code}
        assert piped.decisions == load_decisions(s, codes)
        assert set(piped.decisions) == {with_decision}  # the others have no decision yet
        assert piped.decisions[with_decision].discount_value == 15
        hashes = [member_hash(tracker.pseudonym_secret, m) for m in members]
        linked = dict(
            s.execute(
                select(CustomerLink.member_hash, CustomerLink.customer_id).where(
                    CustomerLink.member_hash.in_(hashes)
                )
            ).all()
        )
        assert piped.links == linked and len(linked) == 2
        empty = load_copies(s, _batch(tracker, [tx()]))  # nothing to read: nothing sent
    assert (empty.campaigns, empty.decisions, empty.links) == ({}, {}, {})
