"""Final reports on real PostgreSQL (reports/final.py): period closers racing in several
processes book each close once and freeze the report once, and the frozen report, read
back from a JSON column, is the live report of that moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import Campaign, CampaignReport, LedgerEntry
from services.redemption_tracker.reports.final import freeze_all, freeze_report
from services.redemption_tracker.reports.periods import close_all
from services.redemption_tracker.reports.report import build_report
from tests.support.redemption_tracker.finished import (
    INCREMENTAL_REVENUE,
    LAST_CLOSE,
    finished_campaign,
)

RACERS = 4


def _race(work: Callable[[], Any]) -> list[Any]:
    """Run `work` in RACERS threads released at once; their results (or exceptions)."""
    start = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = work()
        except Exception as exc:  # reported by the assertion below, not lost
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_closers_racing_book_each_close_once_and_freeze_the_report_once(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "incremental")
    cid, t = done.campaign.campaign_id, done.tracker
    done.clock.at = LAST_CLOSE

    def closer_round() -> bool:
        close_all(t)
        return cid in freeze_all(t)

    rounds = _race(closer_round)
    assert not [r for r in rounds if isinstance(r, Exception)], rounds
    # A racer that found the last close not yet booked froze nothing; a later round does.
    won = rounds.count(True) + (1 if freeze_report(t, cid) else 0)
    assert won == 1
    with t.sessions() as s:
        closes = s.execute(
            select(LedgerEntry.period, LedgerEntry.share)
            .where(LedgerEntry.campaign_id == cid, LedgerEntry.kind == "period_close")
            .order_by(LedgerEntry.period)
        ).all()
        frozen = s.get(CampaignReport, cid)
        count = s.scalar(
            select(func.count())
            .select_from(CampaignReport)
            .where(CampaignReport.campaign_id == cid)
        )
        campaign = s.get(Campaign, cid)
        assert campaign is not None
        live = build_report(s, campaign, LAST_CLOSE)
    assert [p for p, _ in closes] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert sum(share for _, share in closes) == INCREMENTAL_REVENUE // 10
    assert count == 1 and frozen is not None and frozen.frozen_at == LAST_CLOSE
    assert frozen.report == {**live, "final": True, "frozen_at": LAST_CLOSE.isoformat()}


def test_freezers_racing_on_one_campaign_freeze_it_once(
    tracker: Tracker, auth: dict[str, str], store: str
) -> None:
    done = finished_campaign(tracker, auth["pos"], store, "attributed")
    done.clock.at = LAST_CLOSE
    results = _race(lambda: freeze_report(done.tracker, done.campaign.campaign_id))
    assert sorted(results, key=str) == [False] * (RACERS - 1) + [True]
    r = done.client.get(
        f"/v1/campaigns/{done.campaign.campaign_id}/report",
        headers={"Authorization": auth["marketer"]},
    )
    assert r.get_json()["final"] is True and r.get_json()["counts"]["issued"] == 3
