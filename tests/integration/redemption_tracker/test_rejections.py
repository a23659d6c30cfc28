"""Every coupon rejection reason, each caused by a test, on real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.pos.checks import REASONS
from shared.coupons import CouponClaims, issue_code, round_up_to_hour
from tests.integration.redemption_tracker.support import one_coupon, outbox_events, post
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    apply,
    decision_event,
    forged_code,
    now,
    offer,
    tx,
    uid,
)

SEEN: set[str] = set()


def rejected(coupon: dict, reason: str) -> None:
    assert coupon["status"] == "rejected", coupon
    assert coupon["reason"] == reason, coupon
    assert coupon["discount"] == 0
    SEEN.add(reason)


def test_unknown_code(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    code = CampaignSpec(tracker).code()
    mistyped = code[:-1] + ("0" if code[-1] != "0" else "1")
    for bad in ("HELLO", "TN-12345", mistyped):
        rejected(one_coupon(client, auth["pos"], store, tx(coupons=[bad])), "unknown_code")


def test_forged_without_a_database_lookup(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    forged = forged_code(c.number)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(tracker.engine, "before_cursor_execute", record)
    try:
        coupon = one_coupon(client, auth["pos"], store, tx(coupons=[forged]))
    finally:
        event.remove(tracker.engine, "before_cursor_execute", record)
    rejected(coupon, "forged")
    tables = (
        "redemption_tracker.campaigns",
        "redemption_tracker.decisions",
        "redemption_tracker.redemptions",
    )
    assert statements, "the listener saw the request's statements"
    assert [s for s in statements if any(t in s for t in tables)] == []
    assert outbox_events(tracker, "coupon.redemption_rejected", reason="forged", code=forged)


def test_expired(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    c = CampaignSpec(tracker)
    code = c.code(expires_at=now() - timedelta(hours=2))
    rejected(one_coupon(client, auth["pos"], store, tx(coupons=[code])), "expired")


def test_not_yet_valid_before_the_campaign_starts(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, starts_at=now() + timedelta(days=1))
    code = c.code(expires_at=now() + timedelta(days=5))
    rejected(one_coupon(client, auth["pos"], store, tx(coupons=[code])), "not_yet_valid")


def test_not_yet_valid_before_the_decisions_valid_from(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    apply(
        tracker,
        decision_event(
            uid("c_"), c.campaign_id, "treatment", code, valid_from=now() + timedelta(hours=1)
        ),
    )
    rejected(one_coupon(client, auth["pos"], store, tx(coupons=[code])), "not_yet_valid")


def test_already_redeemed(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    code = CampaignSpec(tracker).code()
    assert one_coupon(client, auth["pos"], store, tx(coupons=[code]))["status"] == "redeemed"
    rejected(one_coupon(client, auth["pos"], store, tx(coupons=[code])), "already_redeemed")
    # The same code twice on one basket: the second is already redeemed by the first.
    code2 = CampaignSpec(tracker).code()
    [result] = post(client, auth["pos"], store, tx(coupons=[code2, code2]))
    assert [c["status"] for c in result["coupons"]] == ["redeemed", "rejected"]
    rejected(result["coupons"][1], "already_redeemed")


def test_min_basket_not_met(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    c = CampaignSpec(
        tracker,
        offers=[
            offer(0, min_basket=1500),
            offer(1, applies_to={"categories": ["sweets"]}),
        ],
    )
    rejected(
        one_coupon(client, auth["pos"], store, tx(total=1000, coupons=[c.code(0)])),
        "min_basket_not_met",
    )
    # Nothing in the basket the offer applies to.
    rejected(
        one_coupon(client, auth["pos"], store, tx(total=1000, coupons=[c.code(1)])),
        "min_basket_not_met",
    )
    ok = one_coupon(client, auth["pos"], store, tx(total=1500, coupons=[c.code(0)]))
    assert ok["status"] == "redeemed"


def test_min_basket_of_the_decision_wins(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    apply(tracker, decision_event(uid("c_"), c.campaign_id, "treatment", code, min_basket=800))
    rejected(
        one_coupon(client, auth["pos"], store, tx(total=700, coupons=[code])), "min_basket_not_met"
    )


def test_campaign_not_active(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    paused = CampaignSpec(tracker)
    paused.publish("campaign.paused", status="paused")
    rejected(
        one_coupon(client, auth["pos"], store, tx(coupons=[paused.code()])), "campaign_not_active"
    )
    ended = CampaignSpec(tracker, ends_at=now() - timedelta(minutes=5))
    rejected(
        one_coupon(client, auth["pos"], store, tx(coupons=[ended.code()])), "campaign_not_active"
    )


def test_budget_exhausted_by_redemptions_and_by_discount(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker, budget={"max_redemptions": 1})
    assert one_coupon(client, auth["pos"], store, tx(coupons=[c.code()]))["status"] == "redeemed"
    rejected(
        one_coupon(client, auth["pos"], store, tx(coupons=[c.code()])),
        "redemption_budget_exhausted",
    )
    d = CampaignSpec(tracker, budget={"max_discount_total": 150})
    assert one_coupon(client, auth["pos"], store, tx(coupons=[d.code()]))["discount"] == 100
    rejected(
        one_coupon(client, auth["pos"], store, tx(coupons=[d.code()])),
        "redemption_budget_exhausted",
    )


def test_wrong_store(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    c = CampaignSpec(tracker, offers=[offer(0, stores=["S-elsewhere"])])
    rejected(one_coupon(client, auth["pos"], store, tx(coupons=[c.code()])), "wrong_store")
    d = CampaignSpec(tracker, offers=[offer(0, stores=[store])])
    assert one_coupon(client, auth["pos"], store, tx(coupons=[d.code()]))["status"] == "redeemed"


def test_unknown_campaign_is_not_active(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = issue_code(
        tracker.coupon_key,
        CouponClaims(c.number + 400_000, 0, 7, round_up_to_hour(now() + timedelta(days=1))),
    )
    rejected(one_coupon(client, auth["pos"], store, tx(coupons=[code])), "campaign_not_active")


def test_late_report(client: FlaskClient, tracker: Tracker, auth: dict, store: str) -> None:
    c = CampaignSpec(tracker, starts_at=now() - timedelta(days=10))
    backdated = tx(coupons=[c.code()], occurred_at=now() - timedelta(days=4))
    rejected(one_coupon(client, auth["pos"], store, backdated), "late_report")


def test_zz_every_reason_was_caused(request: pytest.FixtureRequest) -> None:
    """Runs last in this module: each reason of the design was produced above."""
    here = [i for i in request.session.items if getattr(i, "module", None) is request.module]
    if len(here) != len([n for n in globals() if n.startswith("test_")]):
        pytest.skip("only part of this module was selected")
    assert set(REASONS) == SEEN
