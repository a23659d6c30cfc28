"""A campaign's report becomes final when its statements do (reports/final.py), on SQLite:
the period closer freezes an ended campaign's report once, at its last close; from then on
the API serves the frozen report whatever happens to the copies; the relay prunes the copies
of frozen campaigns (and decisions for no campaign), oldest first, in batches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.copies import apply_once, record_decision
from services.redemption_tracker.models import (
    Campaign,
    CampaignReport,
    Decision,
    Delivery,
    LedgerEntry,
)
from services.redemption_tracker.reports.final import (
    FINAL_DECISIONS,
    FINAL_DELIVERIES,
    final_at,
    freeze_all,
    freeze_report,
)
from services.redemption_tracker.reports.report import build_report
from services.redemption_tracker.till_time import TillTime
from services.redemption_tracker.worker import outbox_relay, period_closer
from shared.bus import InMemoryBroker
from shared.config import Settings
from shared.db import unit_of_work
from shared.retention import Pruner, pruner
from tests.support.redemption_tracker.builders import apply, decision_event, linked_event, tx, uid
from tests.support.redemption_tracker.finished import (
    COUPON_BASKET,
    ENDS,
    INCREMENTAL_REVENUE,
    LAST_CLOSE,
    SALE_AT,
    Finished,
    finished_campaign,
)
from tests.support.waiting import running, wait_for

Sessions = Callable[[], Session]
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _get(done: Finished, auth: dict[str, str], url: str) -> Any:
    r = done.client.get(url, headers={"Authorization": auth["marketer"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json() if r.is_json else r.get_data(as_text=True)


def _report(done: Finished, auth: dict[str, str], suffix: str = "") -> Any:
    return _get(done, auth, f"/v1/campaigns/{done.campaign.campaign_id}/report{suffix}")


def _frozen(done: Finished) -> CampaignReport | None:
    with done.tracker.sessions() as s:
        return s.get(CampaignReport, done.campaign.campaign_id)


def _live(done: Finished, now: datetime) -> dict[str, Any]:
    with done.tracker.sessions() as s:
        campaign = s.get(Campaign, done.campaign.campaign_id)
        assert campaign is not None
        return build_report(s, campaign, now)


def _ledger(done: Finished) -> list[tuple[str, str, int]]:
    with done.tracker.sessions() as s:
        rows = s.execute(
            select(LedgerEntry.dedupe_key, LedgerEntry.kind, LedgerEntry.share)
            .where(LedgerEntry.campaign_id == done.campaign.campaign_id)
            .order_by(LedgerEntry.id)
        ).all()
    return [(key, kind, share) for key, kind, share in rows]


def _copies(done: Finished) -> tuple[int, int]:
    cid = done.campaign.campaign_id
    with done.tracker.sessions() as s:
        decisions = s.scalar(select(func.count()).where(Decision.campaign_id == cid))
        deliveries = s.scalar(select(func.count()).where(Delivery.campaign_id == cid))
    return int(decisions or 0), int(deliveries or 0)


def _prune_copies(done: Finished) -> None:
    """What the relay's pruners do to a frozen campaign once its rows are old enough."""
    cid = done.campaign.campaign_id
    with unit_of_work(done.tracker.sessions) as s:
        s.execute(delete(Decision).where(Decision.campaign_id == cid))
        s.execute(delete(Delivery).where(Delivery.campaign_id == cid))


def test_an_ended_campaigns_report_is_frozen_once_at_its_last_close_and_not_before(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "attributed")
    cid, t = done.campaign.campaign_id, done.tracker
    done.clock.at = LAST_CLOSE - SECOND
    assert freeze_report(t, cid) is False, "a second before the last close"
    assert cid not in freeze_all(t)
    assert _report(done, auth)["final"] is False

    # At the last close: the report is built one last time, equal to the live one then.
    done.clock.at = LAST_CLOSE
    live = _live(done, LAST_CLOSE)
    assert freeze_all(t).count(cid) == 1
    assert freeze_report(t, cid) is False and cid not in freeze_all(t), "frozen once"
    frozen = _frozen(done)
    assert frozen is not None and frozen.frozen_at == LAST_CLOSE
    assert frozen.report == {**live, "final": True, "frozen_at": LAST_CLOSE.isoformat()}
    served = _report(done, auth)
    assert served == frozen.report
    assert served["final"] is True and served["as_of"] == LAST_CLOSE.isoformat()
    assert served["counts"]["decisions"] == 5
    assert (served["counts"]["issued"], served["counts"]["delivered"]) == (3, 3)
    assert served["counts"]["redeemed"] == 1
    assert served["money"]["attributed_revenue"] == COUPON_BASKET
    assert served["revenue_share"]["owed"] == COUPON_BASKET // 10
    assert served["lift"]["incremental_revenue"] == INCREMENTAL_REVENUE
    assert served["per_call_fee"]["would_have_earned"] == 3 * 5
    assert frozen.daily == {"labels": ["01-07", "01-08"], "issued": [3, 0], "redeemed": [0, 1]}


def test_an_active_campaign_past_its_last_close_is_not_frozen_it_may_still_be_extended(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "attributed")
    done.campaign.publish("campaign.activated", status="active")  # un-ended, for the test
    done.clock.at = LAST_CLOSE + 30 * DAY
    assert freeze_report(done.tracker, done.campaign.campaign_id) is False
    assert _frozen(done) is None
    done.campaign.publish("campaign.ended", status="ended")
    assert freeze_report(done.tracker, done.campaign.campaign_id) is True


def test_both_bases_freeze_at_the_last_close_and_no_sooner_than_a_tills_lateness() -> None:
    for basis in ("attributed", "incremental"):
        campaign = Campaign(campaign_id="c", ends_at=ENDS, share_basis=basis)
        assert final_at(campaign, TillTime()) == LAST_CLOSE
        # Were a till allowed to report a sale later than the last close, the report
        # would wait for it.
        lenient = TillTime(max_lateness=timedelta(days=120))
        assert final_at(campaign, lenient) == ENDS + timedelta(days=120)


def test_the_period_closer_books_an_incremental_campaigns_last_close_then_freezes_its_report(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "incremental")
    cid, t = done.campaign.campaign_id, done.tracker
    done.clock.at = LAST_CLOSE
    assert freeze_report(t, cid) is False, "not before the last close is booked"
    period_closer_round(done)
    closes = [(key, share) for key, kind, share in _ledger(done) if kind == "period_close"]
    assert [key.rsplit(":", 1)[1] for key, _ in closes] == [
        "2025-01",
        "2025-02",
        "2025-03",
        "2025-04",
    ]
    served = _report(done, auth)
    share = INCREMENTAL_REVENUE // 10
    assert sum(s for _, s in closes) == share == served["revenue_share"]["owed"]
    assert served["revenue_share"]["on_incremental_basis"] == share
    assert {p["status"] for p in served["periods"]} == {"closed"}
    assert served["final"] is True and served["frozen_at"] == LAST_CLOSE.isoformat()


def test_a_frozen_report_stays_what_it_was_whatever_happens_to_the_copies(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "incremental")
    cid, t = done.campaign.campaign_id, done.tracker
    done.clock.at = LAST_CLOSE
    period_closer_round(done)
    statement = f"/v1/statements?campaign_id={cid}&period=2025-01"
    before = (
        _report(done, auth),
        _report(done, auth, "?format=csv"),
        _report(done, auth, ".html"),
        _get(done, auth, statement),
    )
    assert before[0]["final"] is True and "final,True" in before[1]
    assert "Final report, frozen at 2025-04-30 15:00 UTC" in before[2]

    # Later: a holdout customer links a card and buys a lot in the window, and the copies
    # go; the live figures would move, the final ones do not.
    customer, member = uid("c_"), "M" + uid()
    apply(t, linked_event(t, customer, member), decision_event(customer, cid, "holdout"))
    sale = tx(total=90_000, member_id=member, occurred_at=SALE_AT)
    r = done.client.post(
        "/v1/pos/transactions",
        json={"store_id": store, "transactions": [sale]},
        headers={"Authorization": auth["pos"]},
    )
    assert r.status_code == 200, r.get_json()
    _prune_copies(done)
    assert _copies(done) == (0, 0)
    live = _live(done, LAST_CLOSE)
    assert live["counts"]["issued"] == 0 and live["lift"]["incremental_revenue"] is None
    after = (
        _report(done, auth),
        _report(done, auth, "?format=csv"),
        _report(done, auth, ".html"),
        _get(done, auth, statement),
    )
    assert after == before
    assert after[0]["counts"]["issued"] == 3


def test_after_the_freeze_a_till_is_answered_as_before_and_the_ledger_stays(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "attributed")
    done.clock.at = LAST_CLOSE
    assert freeze_report(done.tracker, done.campaign.campaign_id) is True
    _prune_copies(done)
    report, ledger = _report(done, auth), _ledger(done)
    done.clock.at = LAST_CLOSE + DAY

    def post(*txs: dict[str, Any]) -> list[dict[str, Any]]:
        r = done.client.post(
            "/v1/pos/transactions",
            json={"store_id": store, "transactions": list(txs)},
            headers={"Authorization": auth["pos"]},
        )
        assert r.status_code == 200, r.get_json()
        return list(r.get_json()["results"])

    [resent] = post(done.sale)
    assert resent["status"] == "duplicate"
    assert resent["coupons"][0]["status"] == "redeemed", "the first answer, again"
    # A code of the campaign, presented now (its decision copy gone): expired, as before.
    [again] = post(tx(coupons=[done.codes[1]], occurred_at=done.clock.at))
    assert again["coupons"][0]["reason"] == "expired"
    [backdated] = post(tx(coupons=[done.codes[2]], occurred_at=SALE_AT))
    assert backdated["coupons"][0]["reason"] == "late_report"
    r = done.client.get(
        f"/v1/coupons/{done.codes[1]}?store_id={store}", headers={"Authorization": auth["pos"]}
    )
    assert r.status_code == 200 and r.get_json()["reason"] == "expired"
    assert _ledger(done) == ledger and len(ledger) == 1
    assert _report(done, auth) == report


def period_closer_round(done: Finished) -> None:
    """The worker's period closer until it has closed and frozen the campaign."""
    with running(period_closer(done.tracker, every_s=0.05)):
        wait_for(lambda: _frozen(done), timeout=20, what="the frozen report")


# --- pruning ---------------------------------------------------------------------------

# Long before any other test's rows: only this test's rows are older than the window.
NOW = datetime(2019, 6, 1, tzinfo=UTC)


def _decisions(sessions: Sessions, rows: dict[str, tuple[str | None, int]]) -> None:
    """Decision copies by name: (campaign id or None, age in days)."""
    with sessions() as s, s.begin():
        s.execute(
            insert(Decision),
            [
                {
                    "request_id": name,
                    "customer_id": "c_prune",
                    "campaign_id": campaign,
                    "offer_id": None,
                    "arm": "treatment" if campaign else "none",
                    "decided_at": NOW - days * DAY,
                }
                for name, (campaign, days) in rows.items()
            ],
        )


def _freeze(sessions: Sessions, campaign_id: str) -> None:
    with sessions() as s, s.begin():
        s.execute(
            insert(CampaignReport).values(
                campaign_id=campaign_id, frozen_at=NOW, report={"final": True}, daily=None
            )
        )


def _kept(sessions: Sessions, key: Any, names: set[str]) -> set[str]:
    with sessions() as s:
        return set(s.scalars(select(key).where(key.in_(names))))


def test_the_copies_of_frozen_campaigns_go_oldest_first_in_batches_and_no_others(
    sqlite_sessions: Sessions,
) -> None:
    frozen, live, x = f"cmp-{uuid.uuid4().hex[:8]}", f"cmp-{uuid.uuid4().hex[:8]}", uid()
    _freeze(sqlite_sessions, frozen)
    rows = {
        f"{x}-frozen-400": (frozen, 400),
        f"{x}-frozen-300": (frozen, 300),
        f"{x}-none-250": (None, 250),  # arm none, copied before it stopped: no reader
        f"{x}-frozen-200": (frozen, 200),
        f"{x}-frozen-100": (frozen, 100),  # younger than the window
        f"{x}-live-500": (live, 500),  # its campaign's report is not final
    }
    _decisions(sqlite_sessions, rows)
    names = set(rows)
    decisions = Pruner(sqlite_sessions, FINAL_DECISIONS, 180 * DAY, clock=lambda: NOW, batch_size=2)
    assert decisions.prune_batch() == 2
    assert _kept(sqlite_sessions, Decision.request_id, names) == names - {
        f"{x}-frozen-400",
        f"{x}-frozen-300",
    }, "the oldest first"
    assert [decisions.prune_batch() for _ in range(2)] == [2, 0]
    assert _kept(sqlite_sessions, Decision.request_id, names) == {
        f"{x}-frozen-100",
        f"{x}-live-500",
    }

    with sqlite_sessions() as s, s.begin():
        s.execute(
            insert(Delivery),
            [
                {
                    "code": f"{x}-{campaign}-{days}",
                    "campaign_id": campaign,
                    "customer_id": "c_prune",
                    "channel": "push",
                    "delivered_at": NOW - days * DAY,
                }
                for campaign, days in ((frozen, 300), (frozen, 200), (frozen, 100), (live, 500))
            ],
        )
    deliveries = Pruner(
        sqlite_sessions, FINAL_DELIVERIES, 180 * DAY, clock=lambda: NOW, batch_size=1
    )
    assert [deliveries.prune_batch() for _ in range(3)] == [1, 1, 0]
    codes = {f"{x}-{c}-{d}" for c, d in ((frozen, 300), (frozen, 200), (frozen, 100), (live, 500))}
    assert _kept(sqlite_sessions, Delivery.code, codes) == {
        f"{x}-{frozen}-100",
        f"{x}-{live}-500",
    }


def test_the_copy_retention_setting_and_0_keeps_everything(sqlite_sessions: Sessions) -> None:
    assert Settings.from_env({}).tracker_copy_retention_days == 180.0
    days = Settings.from_env({"TENIN_TRACKER_COPY_RETENTION_DAYS": "45"})
    assert days.tracker_copy_retention_days == 45.0
    off = Settings.from_env({"TENIN_TRACKER_COPY_RETENTION_DAYS": "0"})
    assert off.tracker_copy_retention_days is None
    assert pruner(sqlite_sessions, FINAL_DECISIONS, off.tracker_copy_retention_days) is None


def test_the_tracker_workers_relay_prunes_the_copies_of_final_reports(tracker: Tracker) -> None:
    relay = outbox_relay(tracker, InMemoryBroker())
    assert {p.aged.name: p.retention for p in relay.pruners} == {
        "redemption_tracker.outbox": 7 * DAY,
        "redemption_tracker.processed_events": 15 * DAY,
        "redemption_tracker.decisions": 180 * DAY,
        "redemption_tracker.deliveries": 180 * DAY,
    }
    off = Settings(database_url=tracker.settings.database_url, tracker_copy_retention_days=None)
    kept = outbox_relay(Tracker(off, tracker.engine, tracker.sessions, b"k"), InMemoryBroker())
    assert {p.aged.name for p in kept.pruners} == {
        "redemption_tracker.outbox",
        "redemption_tracker.processed_events",
    }


def test_a_decision_for_no_campaign_is_not_copied_but_is_recorded_as_applied(
    tracker: Tracker,
) -> None:
    customer = uid("c_")
    event = decision_event(customer, None, "none")
    assert apply_once(tracker, "test.none", record_decision, event) is True
    assert apply_once(tracker, "test.none", record_decision, event) is False, "redelivered"
    with tracker.sessions() as s:
        assert s.scalar(select(func.count()).where(Decision.customer_id == customer)) == 0
    apply(tracker, decision_event(customer, "cmp-any", "holdout"))
    with tracker.sessions() as s:
        assert s.scalar(select(func.count()).where(Decision.customer_id == customer)) == 1
