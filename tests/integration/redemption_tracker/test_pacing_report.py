"""The pacing curve in the campaign report on real PostgreSQL: JSON series and the SVG chart,
from the campaign copy's pacing mode and the decisions the tracker saw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import Campaign
from tests.integration.redemption_tracker.test_reports import Clock, clocked, get
from tests.support.redemption_tracker.builders import CampaignSpec, apply, decision_event, uid

START = datetime(2026, 11, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def test_the_report_draws_committed_coupons_against_the_even_line(
    tracker: Tracker, auth: dict
) -> None:
    c = CampaignSpec(
        tracker,
        starts_at=START,
        ends_at=day(10),
        budget={"max_coupons": 20, "max_redemptions": None, "max_discount_total": 4000},
        pacing="even",
        message_cost=3,
    )
    issued_on = [0.5, 1.5, 2.5, 4.2, 4.8]
    apply(
        tracker,
        *(
            decision_event(uid("c_"), c.campaign_id, "treatment", c.code(), occurred_at=day(d))
            for d in issued_on
        ),
        decision_event(uid("c_"), c.campaign_id, "none", occurred_at=day(3)),
    )
    with tracker.sessions() as s:
        copy = s.get(Campaign, c.campaign_id)
        assert copy is not None and (copy.pacing, copy.message_cost) == ("even", 3)

    t, client = clocked(tracker, Clock(day(5)))
    pacing = get(client, auth, f"/v1/campaigns/{c.campaign_id}/report")["pacing"]
    assert (pacing["mode"], pacing["max_coupons"], pacing["max_discount_total"]) == (
        "even",
        20,
        4000,
    )
    points = pacing["points"]
    assert points[0]["at"] == START.isoformat() and points[-1]["at"] == day(5).isoformat()
    for p in points:
        at = datetime.fromisoformat(p["at"])
        n = sum(1 for d in issued_on if day(d) <= at)
        assert (p["coupons"], p["committed"]) == (n, 100 * n)
        assert p["ideal_coupons"] == pytest.approx(20 * p["elapsed"], abs=0.01)
        assert p["ideal_committed"] == pytest.approx(4000 * p["elapsed"], abs=0.01)
    assert points[-1]["ideal_coupons"] == 10 and points[-1]["coupons"] == 5

    page = client.get(
        f"/v1/campaigns/{c.campaign_id}/report.html", headers={"Authorization": auth["marketer"]}
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in html and "Pacing (even)" in html
    csv_text = client.get(
        f"/v1/campaigns/{c.campaign_id}/report?format=csv",
        headers={"Authorization": auth["marketer"]},
    ).get_data(as_text=True)
    assert f"pacing.points.{day(5).isoformat()}.coupons,5" in csv_text


def test_a_snapshot_from_before_pacing_existed_is_kept_as_asap(
    tracker: Tracker, client: FlaskClient, auth: dict
) -> None:
    c = CampaignSpec(tracker)  # the builder's snapshot has no pacing nor message_cost
    with tracker.sessions() as s:
        copy = s.get(Campaign, c.campaign_id)
        assert copy is not None and (copy.pacing, copy.message_cost) == ("asap", 0)
    report = get(client, auth, f"/v1/campaigns/{c.campaign_id}/report")
    assert report["pacing"]["mode"] == "asap"
