"""Lift on simulated data, end to end: over 20 seeds the 95% interval holds the truth ~19 times.

Each seed is a campaign with a known true effect (tests/support/redemption_tracker/
simulation.py). Its customers' links and experiment arms are written as the tracker's
copies; their sales go in as POS transactions through the HTTP feed (with unlinked and
anonymous sales mixed in); the interval is read from the campaign report.
"""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CustomerLink, Decision
from services.redemption_tracker.reports.lift import welch_lift
from services.redemption_tracker.sql import insert_rows
from shared.crypto import member_hash
from shared.db import unit_of_work
from tests.integration.redemption_tracker.support import post
from tests.support.redemption_tracker.builders import CampaignSpec, now, tx, uid
from tests.support.redemption_tracker.simulation import simulate

SEEDS = range(20)


def feed(
    client: FlaskClient, auth: dict, store: str, tracker: Tracker, seed: int
) -> tuple[dict, float]:
    sim = simulate(seed)
    start = now() - timedelta(days=9)
    c = CampaignSpec(tracker, starts_at=start, ends_at=now() + timedelta(days=1))
    members = {cu.index: f"M{seed}-{uid()}" for cu in sim.customers}
    ids = {cu.index: uid("c_") for cu in sim.customers}
    # The copies the event handlers would keep (they have their own tests), in bulk.
    with unit_of_work(tracker.sessions) as s:
        insert_rows(
            s,
            CustomerLink,
            [
                {
                    "member_hash": member_hash(tracker.secret, members[cu.index]),
                    "customer_id": ids[cu.index],
                    "linked_at": start,
                }
                for cu in sim.customers
            ],
        )
        insert_rows(
            s,
            Decision,
            [
                {
                    "request_id": uid("req-"),
                    "customer_id": ids[cu.index],
                    "campaign_id": c.campaign_id,
                    "offer_id": "o",
                    "arm": "treatment" if cu.treated else "holdout",
                    "code": None,
                    "valid_from": None,
                    "expires_at": None,
                    "min_basket": None,
                    "discount": None,
                    "decided_at": start,
                }
                for cu in sim.customers
            ],
        )
    sales = [
        tx(total=b, member_id=members[cu.index], occurred_at=start + timedelta(hours=h))
        for cu in sim.customers
        for b, h in zip(cu.baskets, cu.offsets_h, strict=True)
    ]
    sales += [tx(total=999, occurred_at=start + timedelta(hours=5)) for _ in range(50)]
    sales += [tx(total=888, member_id="UNLINKED-" + uid()) for _ in range(50)]
    for i in range(0, len(sales), 1000):
        results = post(client, auth["pos"], store, *sales[i : i + 1000])
        assert {r["status"] for r in results} == {"accepted"}
    r = client.get(
        f"/v1/campaigns/{c.campaign_id}/report", headers={"Authorization": auth["marketer"]}
    )
    assert r.status_code == 200
    lift = r.get_json()["lift"]
    # The pipeline loses and double-counts nothing: the report is the maths on the truth.
    direct = welch_lift(
        [float(sum(cu.baskets)) for cu in sim.customers if cu.treated],
        [float(sum(cu.baskets)) for cu in sim.customers if not cu.treated],
    )
    assert (lift["incremental_revenue"], lift["ci95_low"], lift["ci95_high"]) == (
        direct.incremental_revenue,
        direct.ci95_low,
        direct.ci95_high,
    )
    return lift, sim.true_incremental


def test_the_95_interval_covers_the_true_lift_about_19_times_in_20(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    covered = []
    for seed in SEEDS:
        lift, truth = feed(client, auth, store, tracker, seed)
        assert lift["method"] == "welch" and lift["holdout_customers"] > 50
        covered.append(lift["ci95_low"] <= truth <= lift["ci95_high"])
    hits = sum(covered)
    print(f"lift interval covered the true incremental revenue in {hits}/{len(covered)} seeds")
    # Binomial(20, 0.95): P(at most 16) ≈ 1.6%. The seeds are fixed, so this is stable.
    assert hits >= 17, covered
