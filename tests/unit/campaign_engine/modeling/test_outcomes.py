"""logged_outcomes: the decision log joined with redemptions and spend, point-in-time correct."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from services.campaign_engine.modeling.candidate import bandit_log
from services.campaign_engine.modeling.outcomes import logged_outcomes, spend_in_windows
from services.campaign_engine.modeling.spend import keep_sale
from services.campaign_engine.models import Decision, Drop, DropMember, RedemptionSeen
from shared.db import unit_of_work
from shared.events import Envelope, make_event
from shared.model.features import FEATURE_NAMES, CustomerFeatures
from tests.unit.campaign_engine.fakes import NOW, FakeFeatures, active_campaign, offer_request

Decide = Callable[[Envelope], Any]
MONETARY = FEATURE_NAMES.index("monetary_avg")
WEEK_LATER = NOW + timedelta(days=8)


def sale(customer_id: str, total: int, at_hours: float, tid: str | None = None) -> Envelope:
    return make_event(
        "sale.recorded",
        {
            "customer_id": customer_id,
            "transaction_id": tid or f"t-{customer_id}-{at_hours}",
            "store_id": "s1",
            "total": total,
            "categories": ["bento"],
            "occurred_at": (NOW + timedelta(hours=at_hours)).isoformat(),
        },
        key=customer_id,
        producer="redemption_tracker",
    )


def redeem(sessions: Callable[[], Session], decision: Decision, hours: float, voided: bool) -> None:
    with unit_of_work(sessions) as session:
        session.add(
            RedemptionSeen(
                coupon_code=decision.coupon_code,
                transaction_id=f"r-{decision.decision_id}",
                redeemed_at=NOW + timedelta(hours=hours),
                voided=voided,
                discount=50,
            )
        )


def outcomes(sessions: Callable[[], Session], **over: Any) -> Any:
    kwargs: dict[str, Any] = {"since": NOW - timedelta(days=1), "until": NOW + timedelta(days=1)}
    kwargs.update(over)
    with sessions() as session:
        return logged_outcomes(session, now=kwargs.pop("now", WEEK_LATER), **kwargs)


def test_a_feature_changed_after_a_decision_does_not_reach_its_row(
    decide: Decide, sessions: Callable[[], Session], features: FakeFeatures
) -> None:
    active_campaign(sessions)
    features.known["c_pit"] = CustomerFeatures(monetary_avg=500.0)
    first = decide(offer_request("c_pit"))
    features.known["c_pit"] = CustomerFeatures(monetary_avg=9000.0)  # later sales moved it
    second = decide(offer_request("c_pit"))

    logged = outcomes(sessions)
    row = {d: i for i, d in enumerate(logged.decision_id)}
    assert logged.X[row[first.decision_id], MONETARY] == 500.0
    assert logged.X[row[second.decision_id], MONETARY] == 9000.0
    assert logged.candidates_X.shape == (2, len(FEATURE_NAMES))
    assert list(logged.offsets) == [0, 1, 2] and list(logged.action) == [0, 0]
    assert list(logged.reason) == ["exploit", "exploit"]


def test_redemptions_count_only_unvoided_and_within_validity(
    decide: Decide, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions)
    kept, voided, late, unused = (decide(offer_request()) for _ in range(4))
    validity = (kept.expires_at - NOW).total_seconds() / 3600
    redeem(sessions, kept, 1, voided=False)
    redeem(sessions, voided, 1, voided=True)
    redeem(sessions, late, validity + 1, voided=False)

    logged = outcomes(sessions)
    got = dict(zip(logged.decision_id, logged.redeemed, strict=True))
    assert got == {
        kept.decision_id: 1,
        voided.decision_id: 0,
        late.decision_id: 0,
        unused.decision_id: 0,
    }
    discount = dict(zip(logged.decision_id, logged.discount, strict=True))
    assert discount[kept.decision_id] == 50 and discount[voided.decision_id] == 0


def test_spend_counts_only_the_window_after_the_decision_for_holdout_too(
    decide: Decide, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions, holdout_pct=100)
    held = decide(offer_request("c_held"))
    for envelope in (
        sale("c_held", 1000, -1),  # before the decision
        sale("c_held", 700, 2),
        sale("c_held", 700, 2),  # the same event redelivered: counted once
        sale("c_held", 300, 6 * 24),
        sale("c_held", 5000, 7 * 24 + 1),  # after the 7-day window
        sale("c_other", 400, 3),
    ):
        keep_sale(envelope, sessions=sessions)

    logged = outcomes(sessions)
    assert list(logged.decision_id) == [held.decision_id]
    assert (logged.arm[0], logged.action[0], logged.intended[0]) == ("holdout", -1, 0)
    assert logged.spend_after[0] == 1000.0 and not logged.treated[0]


def test_decisions_whose_window_is_still_open_are_left_out(
    decide: Decide, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions)
    decide(offer_request())
    assert len(outcomes(sessions, now=NOW + timedelta(days=3))) == 0
    assert len(outcomes(sessions, now=WEEK_LATER)) == 1
    assert len(outcomes(sessions, until=NOW)) == 0  # [since, until): decided at NOW is outside


def test_spend_in_windows_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(3)
    sale_customers = [f"c{i}" for i in rng.integers(0, 20, size=500)]
    sale_ms = rng.integers(0, 10_000, size=500)
    amount = rng.integers(1, 1000, size=500).astype(float)
    customers = [f"c{i}" for i in rng.integers(0, 25, size=200)]
    start = rng.integers(0, 10_000, size=200)
    got = spend_in_windows(sale_customers, sale_ms, amount, customers, start, 1500)
    want = [
        sum(
            a
            for c2, t, a in zip(sale_customers, sale_ms, amount, strict=True)
            if c2 == c and s < t <= s + 1500
        )
        for c, s in zip(customers, start, strict=True)
    ]
    assert np.allclose(got, want)


def test_a_drops_decision_carries_its_campaigns_message_cost(
    decide: Decide, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, message_cost=3)
    pushed, replied = offer_request("c_pushed"), offer_request("c_replied")
    with unit_of_work(sessions) as session:  # the drop that asked for `pushed`
        session.add(Drop(drop_id="d-1", campaign_id=campaign.campaign_id, status="running"))
        session.add(
            DropMember(
                drop_id="d-1", customer_id="c_pushed", request_id=pushed.payload["request_id"]
            )
        )
    by_customer = {decide(e).customer_id: e for e in (pushed, replied)}
    assert set(by_customer) == {"c_pushed", "c_replied"}

    logged = outcomes(sessions)
    cost = dict(zip(logged.customer_id, logged.message_cost, strict=True))
    assert cost == {"c_pushed": 3.0, "c_replied": 0.0}
    kept = logged.select(logged.customer_id == "c_pushed")
    assert list(kept.message_cost) == [3.0] and list(kept.customer_id) == ["c_pushed"]
    # Both were sent and neither redeemed: the push's reward is the message it paid for.
    assert list(logged.action) == [0, 0]
    reward = dict(zip(logged.customer_id, bandit_log(logged, 0.3).reward, strict=True))
    assert reward == {"c_pushed": -3.0, "c_replied": 0.0}
