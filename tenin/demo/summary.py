"""The end of the demo: wait for the numbers to settle, print them, write report.html."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from services.redemption_tracker.reports.charts import (
    CalibrationBins,
    DailySeries,
    ReportExtras,
    render_report_html,
    yen,
)
from tenin.clients import MarketerClient
from tenin.demo.simulation import WeekRecord


def settle_report(
    marketer: MarketerClient, campaign_id: str, record: WeekRecord, timeout: float = 90.0
) -> dict[str, Any]:
    """The API's report once it has caught up with every redemption the tills saw."""
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = marketer.report(campaign_id)
        if response.status_code == 200:
            report = response.json()
            if report["counts"]["redeemed"] == record.pos_redeemed and report["counts"][
                "issued"
            ] >= len(record.coupons):
                return report
        time.sleep(0.5)
    raise RuntimeError(
        f"the report did not settle within {timeout}s: API says {report.get('counts')}, "
        f"tills redeemed {record.pos_redeemed}, demo saw {len(record.coupons)} coupons"
    )


def calibration(
    record: WeekRecord, scores: dict[str, float], bins: int = 6
) -> CalibrationBins | None:
    """Coupons binned by the model's score: mean score, mean true rate, observed rate."""
    rows = [
        (scores[c.code], c.true_p, c.redeemed_day is not None)
        for c in record.coupons.values()
        if c.code in scores
    ]
    if len(rows) < bins * 5:
        return None
    rows.sort()
    out = CalibrationBins([], [], [], [])
    for chunk in np.array_split(np.array(rows, dtype=float), bins):
        out.predicted.append(float(chunk[:, 0].mean()))
        out.true_rate.append(float(chunk[:, 1].mean()))
        out.observed.append(float(chunk[:, 2].mean()))
        out.counts.append(len(chunk))
    return out


def write_report(
    path: Path, report: dict[str, Any], record: WeekRecord, scores: dict[str, float]
) -> Path:
    """report.html with the per-simulated-day and calibration charts added."""
    extras = ReportExtras(
        daily=DailySeries(
            [f"day {d + 1}" for d in range(record.days)],
            record.issued_per_day,
            record.redeemed_per_day,
        ),
        calibration=calibration(record, scores),
        notes=[
            "Made by `tenin demo`: simulated customers chatted through signed LINE webhooks and "
            "shopped through the POS feed; the simulator's hidden response model decided what "
            "each shopper did. Per-day figures are the demo's simulated days.",
        ],
    )
    path.write_text(render_report_html(report, extras), encoding="utf-8")
    # The API's report as the page was drawn from it, for anyone checking the page's numbers.
    path.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False), "utf-8")
    return path


def print_summary(report: dict[str, Any], record: WeekRecord, path: Path) -> None:
    """A plain-text table of the figures that matter."""
    c, m, lift, share, fee = (
        report["counts"],
        report["money"],
        report["lift"],
        report["revenue_share"],
        report["per_call_fee"],
    )

    ci = f"{yen(lift.get('ci95_low'))} … {yen(lift.get('ci95_high'))}"
    rows = [
        (
            "chat events sent",
            f"{record.chat_events:,}  ({record.chat_events / max(record.chat_seconds, 1e-9):,.0f}/s)",
        ),
        (
            "POS transactions",
            f"{record.pos_transactions:,}  ({record.pos_transactions / max(record.pos_seconds, 1e-9):,.0f}/s)",
        ),
        (
            "decisions / issued / delivered",
            f"{c['decisions']:,} / {c['issued']:,} / {c['delivered']:,}",
        ),
        ("redeemed (rate)", f"{c['redeemed']:,} ({(c.get('redemption_rate') or 0):.1%})"),
        ("attributed revenue", yen(m["attributed_revenue"])),
        ("discount cost", yen(m["discount_cost"])),
        (
            "spend/customer treatment vs holdout",
            f"{yen(lift.get('treatment_mean_spend'))} vs {yen(lift.get('holdout_mean_spend'))}",
        ),
        ("incremental revenue (95% CI)", f"{yen(lift.get('incremental_revenue'))}  ({ci})"),
        (f"revenue share owed ({share['pct']}% {share['basis']})", yen(share["owed"])),
        ("a per-call fee would have earned", yen(fee["would_have_earned"])),
        ("report", str(path)),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print()
