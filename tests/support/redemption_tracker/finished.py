"""A campaign that ran in January 2025 and ended, for the final-report tests: its copies
(linked customers, treated and holdout decisions, deliveries), a coupon redeemed at a till,
and the spend its lift measures. Its dates lie far behind the other tests' campaigns, so a
clock set to its last close freezes nothing of theirs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    apply,
    decision_event,
    delivered_event,
    linked_event,
    tx,
    uid,
)

JST = ZoneInfo("Asia/Tokyo")
STARTS = datetime(2025, 1, 6, tzinfo=JST)
ENDS = datetime(2025, 1, 31, 12, tzinfo=JST)  # end month 2025-01: the last close is 2025-04's
LAST_CLOSE = datetime(2025, 5, 1, tzinfo=JST)  # the end of 2025-04 in the ledger's Japan time
SALE_AT = STARTS + timedelta(days=2)
# (arm, spend in the window) per linked customer; the treated get a coupon each.
CUSTOMERS = (
    ("treatment", 1500),
    ("treatment", 1200),
    ("treatment", 900),
    ("holdout", 500),
    ("holdout", 700),
)
INCREMENTAL_REVENUE = (1200 - 600) * 3  # (mean treated − mean holdout) × treated
COUPON_BASKET = 1000  # the first treated customer's coupon is redeemed on this basket


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Finished:
    """The campaign, a tracker and an app on a settable clock, and what happened."""

    tracker: Tracker
    client: FlaskClient
    clock: Clock
    campaign: CampaignSpec
    codes: list[str] = field(default_factory=list)
    sale: dict[str, Any] = field(default_factory=dict)  # the POS transaction that redeemed


def finished_campaign(tracker: Tracker, pos_auth: str, store: str, basis: str) -> Finished:
    """Run the campaign on `basis` (attributed | incremental), then end it."""
    clock = Clock(SALE_AT)
    t = replace(tracker, clock=clock)
    client = create_app(tracker=t).test_client()
    c = CampaignSpec(
        t,
        starts_at=STARTS,
        ends_at=ENDS,
        revenue_share={"pct": 10, "basis": basis},
        per_call_fee=3,
    )
    done = Finished(t, client, clock, c)
    members = []
    for i, (arm, _) in enumerate(CUSTOMERS):
        customer, member = uid("c_"), "M" + uid()
        code = c.code(expires_at=ENDS) if arm == "treatment" else None
        decided = STARTS + timedelta(days=1, hours=i)
        events = [
            linked_event(t, customer, member),
            decision_event(
                customer,
                c.campaign_id,
                arm,
                code,
                valid_from=STARTS,
                expires_at=ENDS,
                occurred_at=decided,
            ),
        ]
        if code is not None:
            events.append(delivered_event(code, customer, c.campaign_id))
            done.codes.append(code)
        apply(t, *events)
        members.append(member)
    done.sale = tx(
        total=COUPON_BASKET, coupons=[done.codes[0]], member_id=members[0], occurred_at=SALE_AT
    )
    spends = [
        tx(total=spend - (COUPON_BASKET if i == 0 else 0), member_id=m, occurred_at=SALE_AT)
        for i, ((_, spend), m) in enumerate(zip(CUSTOMERS, members, strict=True))
    ]
    r = client.post(
        "/v1/pos/transactions",
        json={"store_id": store, "transactions": [done.sale, *spends]},
        headers={"Authorization": pos_auth},
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["results"][0]["coupons"][0]["status"] == "redeemed"
    c.publish("campaign.ended", status="ended")
    return done
