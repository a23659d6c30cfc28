"""decide_batch with fakes: a whole poll decided at once keeps every guarantee of one-by-one
decisions (docs/architecture.md § Decisions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import holdout_key
from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.budget.reservation_store import (
    Refused,
    Reservation,
    ReservationsUnavailable,
    Wanted,
)
from services.campaign_engine.decisions.decide import decide_batch
from services.campaign_engine.decisions.inputs import ActiveCampaigns
from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.models import Coupon, Decision, Outbox, ProcessedEvent
from shared.coupons import coupon_key
from shared.db import unit_of_work
from shared.events import TOPIC_OF_TYPE, Envelope, make_event
from tests.unit.campaign_engine.conftest import SECRET
from tests.unit.campaign_engine.decisions.test_decide import FixedUplift
from tests.unit.campaign_engine.fakes import (
    NOW,
    ConstantScorer,
    FakeFeatures,
    active_campaign,
    offer_request,
)

Batch = Callable[..., list[Decision | None]]


class CountingScorer(ConstantScorer):
    """Counts model calls and the rows in each."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def score(self, matrix: np.ndarray) -> np.ndarray:
        self.calls.append(len(matrix))
        return super().score(matrix)


class ReserveDown(InMemoryReservations):
    """Reads answer, then Redis goes away right when the batch reserves."""

    def reserve_many(self, wanted: Sequence[Wanted]) -> list[Reservation | Refused]:
        raise ReservationsUnavailable("connection reset at reservation")


@pytest.fixture
def batch(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    scorer: ConstantScorer,
) -> Batch:
    campaigns = ActiveCampaigns()

    def run(envelopes: list[Envelope], **over: Any) -> list[Decision | None]:
        deps: dict[str, Any] = {
            "sessions": sessions,
            "reservations": reservations,
            "features": features,
            "scorer": scorer,
            "policy": PolicyConfig(mode="greedy"),
            "coupon_key": coupon_key(SECRET),
            "holdout_key": holdout_key(SECRET),
            "clock": lambda: NOW,
            "campaigns": campaigns,
        }
        deps.update(over)
        return decide_batch(envelopes, **deps)

    return run


def count(sessions: Callable[[], Session], model: Any) -> int:
    """Rows of a table (of the outbox: offer.decided rows only)."""
    query = select(func.count()).select_from(model)
    if model is Outbox:
        query = query.where(Outbox.topic == TOPIC_OF_TYPE["offer.decided"])
    with sessions() as session:
        return int(session.scalar(query) or 0)


def stored_reasons(sessions: Callable[[], Session]) -> Counter[str | None]:
    with sessions() as session:
        return Counter(session.execute(select(Decision.reason)).scalars())


def test_a_batch_stores_one_decision_and_one_event_per_request(
    batch: Batch, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions)
    requests = [offer_request() for _ in range(20)]
    decided = batch(requests)
    assert all(d is not None and d.coupon_code for d in decided)
    assert [d.request_id for d in decided if d] == [r.payload["request_id"] for r in requests]
    assert count(sessions, Decision) == count(sessions, Coupon) == 20
    assert count(sessions, Outbox) == 20
    # The decision log's unique request id is the consumer's record: no processed-event row.
    assert count(sessions, ProcessedEvent) == 0
    assert batch(requests) == [None] * 20  # the same events again: all duplicates
    assert count(sessions, Decision) == count(sessions, Outbox) == 20


def test_the_whole_batch_is_scored_in_one_model_call(
    batch: Batch, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions)
    active_campaign(sessions)  # two campaigns: two candidate rows per request
    scorer = CountingScorer()
    batch([offer_request() for _ in range(30)], scorer=scorer)
    assert scorer.calls == [60]


def test_duplicates_inside_a_batch_are_decided_once(
    batch: Batch, sessions: Callable[[], Session], reservations: InMemoryReservations
) -> None:
    campaign = active_campaign(sessions)
    first = offer_request("c_dup")
    same_request = offer_request("c_dup", request_id=first.payload["request_id"])
    same_event = first.model_copy()
    decided = batch([first, same_request, offer_request(), same_event])
    assert [d is not None for d in decided] == [True, False, True, False]
    assert count(sessions, Decision) == count(sessions, Coupon) == 2
    assert reservations.budgets[campaign.campaign_id]["issued"] == 2


def test_requests_decided_in_an_earlier_batch_are_skipped(
    batch: Batch, sessions: Callable[[], Session], reservations: InMemoryReservations
) -> None:
    campaign = active_campaign(sessions)
    earlier = [offer_request() for _ in range(3)]
    batch(earlier)
    later = batch([*earlier, offer_request()])
    assert [d is not None for d in later] == [False, False, False, True]
    assert count(sessions, Decision) == count(sessions, Outbox) == 4
    assert reservations.budgets[campaign.campaign_id]["issued"] == 4


def test_caps_and_budgets_hold_between_requests_of_one_batch(
    batch: Batch, sessions: Callable[[], Session]
) -> None:
    active_campaign(
        sessions,
        budget={"max_coupons": 5},
        caps={"per_customer_per_day": 1, "per_customer_total": None},
    )
    same_customer = [offer_request("c_again") for _ in range(3)]
    others = [offer_request() for _ in range(10)]
    decided = batch([*same_customer, *others])
    assert [bool(d and d.coupon_code) for d in decided[:3]] == [True, False, False]
    assert count(sessions, Coupon) == 5
    assert stored_reasons(sessions) == Counter(
        {"exploit": 5, "cap_reached": 2, "budget_exhausted": 6}
    )


def test_redis_lost_at_reservation_means_no_coupon_for_anyone_in_the_batch(
    batch: Batch, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions)
    down = ReserveDown()
    decided = batch([offer_request() for _ in range(5)], reservations=down)
    assert [(d.arm, d.reason, d.coupon_code) for d in decided if d] == [
        ("none", "redis_unavailable", None)
    ] * 5
    assert count(sessions, Coupon) == 0
    assert down.budgets[campaign.campaign_id]["issued"] == 0


def test_features_unreadable_means_no_coupon_and_still_an_answer(
    batch: Batch, sessions: Callable[[], Session], features: FakeFeatures
) -> None:
    active_campaign(sessions)
    features.down = True
    decided = batch([offer_request() for _ in range(4)])
    assert {(d.arm, d.reason) for d in decided if d} == {("none", "redis_unavailable")}
    assert count(sessions, Outbox) == 4


def test_a_failed_batch_stores_nothing_and_gives_every_reservation_back(
    batch: Batch, sessions: Callable[[], Session], reservations: InMemoryReservations
) -> None:
    campaign = active_campaign(sessions)
    with unit_of_work(sessions) as session:
        session.execute(text("DROP TABLE campaign_engine.outbox"))
    with pytest.raises(Exception, match="outbox"):
        batch([offer_request() for _ in range(6)])
    budget = reservations.budgets[campaign.campaign_id]
    assert (budget["issued"], budget["money"], budget["serial"]) == (0, 0, 6)
    assert all(v == 0 for v in reservations.counters.values())
    assert count(sessions, Decision) == count(sessions, Coupon) == 0


def test_the_decision_log_names_the_uplift_model_when_it_ranked(
    batch: Batch, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions)
    uplifted = batch(
        [offer_request()],
        policy=PolicyConfig(mode="greedy", uplift=True),
        uplift_scorer=FixedUplift(5000.0, 100.0),
    )
    plain = batch([offer_request()])
    assert [d.model_version for d in uplifted + plain if d] == ["uplift-test", "constant-test"]


def test_a_bad_payload_fails_the_batch_before_anything_is_reserved(
    batch: Batch, sessions: Callable[[], Session], reservations: InMemoryReservations
) -> None:
    """The consumer loop then splits the batch to isolate it (tests/unit/shared)."""
    campaign = active_campaign(sessions)
    bad = make_event("customer.opted_out", {"customer_id": "c_x"}, key="c_x", producer="t")
    with pytest.raises(Exception):  # noqa: B017  # the payload model's validation error
        batch([offer_request(), bad])
    assert reservations.budgets.get(campaign.campaign_id, {}).get("issued", 0) == 0
    assert count(sessions, Decision) == 0
