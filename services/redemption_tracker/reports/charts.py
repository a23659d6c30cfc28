"""The campaign report as a self-contained HTML page with its charts embedded.

The redemption tracker serves it live (`GET /v1/campaigns/{id}/report.html`, page.py)
from its report dict; `tenin demo` writes the same page with two extra charts it alone
can draw (per simulated day, and the model's propensities against the simulator's truth).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

TEAL, CORAL, GREY, GOLD = "#1b9e8f", "#e5735c", "#9aa5b1", "#e0a82e"


@dataclass
class DailySeries:
    """Coupons issued and redeemed per day."""

    labels: list[str]
    issued: list[int]
    redeemed: list[int]


@dataclass
class CalibrationBins:
    """Per bin of the model's predicted propensity: predicted, true and observed rates."""

    predicted: list[float]
    true_rate: list[float]
    observed: list[float]
    counts: list[int]


@dataclass
class ReportExtras:
    daily: DailySeries | None = None
    calibration: CalibrationBins | None = None
    notes: list[str] = field(default_factory=list)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def yen(value: float | int | None) -> str:
    """Yen for people: ¥1,280, −¥310, or – when there is no figure."""
    if value is None:
        return "–"
    return f"−¥{-value:,.0f}" if value < 0 else f"¥{value:,.0f}"


def daily_chart(series: DailySeries) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    xs = range(len(series.labels))
    ax.bar([x - 0.2 for x in xs], series.issued, width=0.4, color=TEAL, label="issued")
    ax.bar([x + 0.2 for x in xs], series.redeemed, width=0.4, color=CORAL, label="redeemed")
    ax.set_xticks(list(xs), series.labels, rotation=0 if len(series.labels) < 9 else 45)
    ax.set_ylabel("coupons")
    ax.set_title("Coupons issued and redeemed per day")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def lift_chart(lift: dict[str, Any]) -> str | None:
    treat, hold = lift.get("treatment_mean_spend"), lift.get("holdout_mean_spend")
    if treat is None or hold is None:
        return None
    treated = max(1, int(lift.get("treated_customers") or 1))
    low, high = lift.get("ci95_low"), lift.get("ci95_high")
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(7.6, 3.2), gridspec_kw={"width_ratios": [2, 1.2]}
    )
    left.bar(["treatment", "holdout"], [treat, hold], color=[TEAL, GREY])
    for x, value in enumerate([treat, hold]):
        left.text(x, value, yen(value), ha="center", va="bottom")
    left.set_ylabel("spend per linked customer (¥)")
    left.set_title("Spend per customer over the campaign window")
    diff = treat - hold
    if low is not None and high is not None:
        lo, hi = low / treated, high / treated
        right.errorbar(
            [0], [diff], yerr=[[diff - lo], [hi - diff]], fmt="o", color=CORAL, capsize=8
        )
        right.axhline(0, color=GREY, lw=1)
        right.set_title("Difference, 95% interval")
    else:
        right.plot([0], [diff], "o", color=CORAL)
        right.set_title("Difference (too few customers for an interval)")
    right.set_xticks([])
    right.set_ylabel("¥ per customer")
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def earnings_chart(report: dict[str, Any]) -> str:
    share = report["revenue_share"]
    fee = report["per_call_fee"]
    labels = [
        "revenue share owed",
        "on attributed basis",
        "on incremental basis",
        "per-call fee instead",
    ]
    values = [
        share["owed"],
        share["on_attributed_basis"],
        share["on_incremental_basis"] or 0,
        fee["would_have_earned"],
    ]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    colors = [TEAL, GOLD, GREY, CORAL]
    bars = ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + yen(value), va="center")
    ax.set_xlabel("¥")
    ax.set_title("What the clerk earns: revenue share vs a per-call fee")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def calibration_chart(bins: CalibrationBins) -> str:
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    top = max([*bins.predicted, *bins.true_rate, *bins.observed, 0.05]) * 1.1
    ax.plot([0, top], [0, top], color=GREY, lw=1, ls="--", label="perfect")
    ax.plot(bins.predicted, bins.true_rate, "o-", color=TEAL, label="simulator's true rate")
    ax.plot(bins.predicted, bins.observed, "s", color=CORAL, label="observed redemptions")
    ax.set_xlabel("model's estimated P(redeem)")
    ax.set_ylabel("rate")
    ax.set_title("Calibration of the propensity model")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def pacing_svg(pacing: dict[str, Any] | None) -> str | None:
    """The pacing curve as inline SVG: committed so far (teal) against the even line (dashed).

    Drawn in coupons when the campaign caps coupons, else in yen committed.
    """
    points = (pacing or {}).get("points") or []
    if len(points) < 2:
        return None
    unit, ideal_key = ("coupons", "ideal_coupons")
    if points[-1]["ideal_coupons"] is None and points[-1]["ideal_committed"] is not None:
        unit, ideal_key = ("committed", "ideal_committed")
    total = (pacing or {}).get("max_coupons" if unit == "coupons" else "max_discount_total")
    top = max([float(total or 0), *(float(p[unit]) for p in points), 1.0])
    w, h, pad = 640.0, 240.0, 36.0

    def xy(elapsed: float, value: float) -> str:
        return f"{pad + elapsed * (w - 2 * pad):.1f},{h - pad - value / top * (h - 2 * pad):.1f}"

    actual = " ".join(xy(p["elapsed"], p[unit]) for p in points)
    ideal = (
        f"<line class='ideal' x1='{pad}' y1='{h - pad}' "
        f"x2='{w - pad}' y2='{h - pad - float(total) / top * (h - 2 * pad):.1f}' "
        f"stroke='{GREY}' stroke-dasharray='6 4'/>"
        if total is not None and points[-1][ideal_key] is not None
        else ""
    )
    label = "coupons issued" if unit == "coupons" else "yen committed"
    mode = html.escape(str((pacing or {}).get("mode", "")))
    return (
        f"<svg viewBox='0 0 {w:.0f} {h:.0f}' role='img' "
        f"aria-label='Pacing: {label} against the even line'>"
        f"<text x='{pad}' y='20' font-size='14'>Pacing ({mode}): {label} against the even "
        f"line</text><line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#333'/>"
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{h - pad}' stroke='#333'/>{ideal}"
        f"<polyline class='actual' fill='none' stroke='{TEAL}' stroke-width='2' "
        f"points='{actual}'/><text x='{pad}' y='{h - 12}' font-size='11'>window start</text>"
        f"<text x='{w - pad}' y='{h - 12}' font-size='11' text-anchor='end'>window end</text>"
        f"<text x='{pad - 4}' y='{pad}' font-size='11' text-anchor='end'>{top:,.0f}</text>"
        f"<text x='{w - pad}' y='20' font-size='11' text-anchor='end'><tspan fill='{TEAL}'>"
        f"━ {label}</tspan>  <tspan fill='{GREY}'>╌ even line</tspan></text></svg>"
    )


def _table(rows: Sequence[tuple[str, str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td><td class='why'>{html.escape(w)}</td></tr>"
        for k, v, w in rows
    )
    return f"<table>{body}</table>"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, what it means) rows; the README explains the same figures."""
    c, m, lift = report["counts"], report["money"], report["lift"]
    share, fee = report["revenue_share"], report["per_call_fee"]
    rate = c.get("redemption_rate")
    ci = (
        f"{yen(lift.get('ci95_low'))} … {yen(lift.get('ci95_high'))}"
        if lift.get("ci95_low") is not None
        else "–"
    )
    return [
        ("decisions", f"{c['decisions']:,}", "offer decisions made (every arm, holdout included)"),
        ("issued", f"{c['issued']:,}", "decisions that carried a coupon"),
        ("delivered", f"{c['delivered']:,}", "coupon messages the messaging platform accepted"),
        ("redeemed", f"{c['redeemed']:,}", "coupons redeemed at a till, net of voids"),
        (
            "redeemed late",
            f"{c.get('late', 0):,}",
            "of the redeemed, reported later than the till clock skew allows (offline tills)",
        ),
        ("redemption rate", "–" if rate is None else f"{rate:.1%}", "redeemed ÷ issued"),
        (
            "attributed revenue",
            yen(m["attributed_revenue"]),
            "basket totals of transactions that redeemed a coupon, net of voids",
        ),
        ("discount cost", yen(m["discount_cost"]), "discounts granted at the till, net of voids"),
        (
            "treated / holdout customers",
            f"{lift.get('treated_customers', 0):,} / {lift.get('holdout_customers', 0):,}",
            "linked customers in each group",
        ),
        (
            "spend per customer, treatment",
            yen(lift.get("treatment_mean_spend")),
            "mean spend of linked treated customers in the window",
        ),
        (
            "spend per customer, holdout",
            yen(lift.get("holdout_mean_spend")),
            "mean spend of linked holdout customers in the window",
        ),
        (
            "incremental revenue",
            yen(lift.get("incremental_revenue")),
            "(treatment − holdout mean spend) × treated customers",
        ),
        (
            "95% interval",
            ci,
            f"Welch interval of the incremental revenue ({lift.get('method', '')})",
        ),
        (
            "revenue share owed",
            yen(share["owed"]),
            f"{share['pct']}% on the {share['basis']} basis, from the ledger",
        ),
        (
            "per-call fee would have earned",
            yen(fee["would_have_earned"]),
            f"{yen(fee['fee'])} × {fee['decisions']:,} decisions",
        ),
    ]


STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:980px;margin:2em auto;color:#222;padding:0 1em}
h1{margin-bottom:.1em} .sub{color:#667;margin-top:0} table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{padding:.35em .6em;border-bottom:1px solid #e3e6ea;text-align:left} th{width:26%;font-weight:600}
td.why{color:#667;font-size:.9em} .charts{display:flex;flex-wrap:wrap;gap:1em} .charts img{max-width:100%}
.note{background:#f6f8fa;padding:.6em 1em;border-radius:6px;color:#445}
"""


def render_report_html(report: dict[str, Any], extras: ReportExtras | None = None) -> str:
    """The whole page: summary table and charts, nothing fetched from elsewhere."""
    extras = extras or ReportExtras()
    charts = []
    if extras.daily is not None:
        charts.append(("Coupons per day", daily_chart(extras.daily)))
    lift_png = lift_chart(report["lift"])
    if lift_png:
        charts.append(("Treatment vs holdout", lift_png))
    charts.append(("Revenue share vs per-call fee", earnings_chart(report)))
    if extras.calibration is not None:
        charts.append(("Model calibration", calibration_chart(extras.calibration)))
    images = "".join(
        f"<figure><img alt='{html.escape(t)}' src='{src}'></figure>" for t, src in charts
    )
    pacing = pacing_svg(report.get("pacing"))
    if pacing:
        images = f"<figure class='pacing'>{pacing}</figure>" + images
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in extras.notes)
    title = html.escape(report.get("name", "campaign"))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>tenin report: {title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1><p class='sub'>campaign {html.escape(report['campaign_id'])} · "
        f"{html.escape(report.get('status', ''))} · as of {html.escape(report.get('as_of', ''))}</p>"
        f"{_table(summary_rows(report))}<div class='charts'>{images}</div>{notes}</body></html>"
    )
