"""A campaign's page: its terms, the live report figures and charts (refreshed by htmx
polling a fragment), and its drops with live progress and cancel (docs/console.md § Pages;
the APIs are docs/interfaces.md § Reports and statements and § Campaign drops)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from services.console import charts
from services.console.api_client import ApiProblem, not_available
from services.console.web import campaign_or_404, console, field_errors, notify, signed_in_key, text

LIVE_DROP_STATUSES = ("queued", "running", "waiting_quiet_hours")


def blueprint() -> Blueprint:
    bp = Blueprint("detail", __name__)
    bp.add_url_rule("/campaigns/<campaign_id>", "show", show)
    bp.add_url_rule("/campaigns/<campaign_id>/live", "live", live)
    bp.add_url_rule("/campaigns/<campaign_id>/drops/live", "drops_live", drops_live)
    bp.add_url_rule("/campaigns/<campaign_id>/drops", "start_drop", start_drop, methods=["POST"])
    bp.add_url_rule(
        "/campaigns/<campaign_id>/drops/<drop_id>/cancel",
        "cancel_drop",
        cancel_drop,
        methods=["POST"],
    )
    return bp


def show(campaign_id: str) -> str:
    api, key = console().api, signed_in_key()
    campaign = campaign_or_404(campaign_id)
    report = api.report(key, campaign_id) if campaign["status"] != "draft" else None
    return render_template(
        "campaign_detail.html",
        campaign=campaign,
        report=report,
        report_charts=report_charts(report),
        drops=_drops(campaign_id),
        drop_errors={},
    )


def live(campaign_id: str) -> str:
    """The live-report fragment htmx swaps in every few seconds."""
    report = console().api.report(signed_in_key(), campaign_id)
    return render_template(
        "_live_report.html",
        campaign={"campaign_id": campaign_id},
        report=report,
        report_charts=report_charts(report),
    )


def drops_live(campaign_id: str) -> str:
    return render_template(
        "_drops.html", campaign={"campaign_id": campaign_id}, drops=_drops(campaign_id)
    )


def _drops(campaign_id: str) -> list[dict[str, Any]] | None:
    """The campaign's drops, newest first; None while the drops API is not there."""
    try:
        return console().api.drops(signed_in_key(), campaign_id)
    except ApiProblem as problem:
        if not_available(problem):
            return None
        raise


def start_drop(campaign_id: str) -> ResponseReturnValue:
    form, zone = request.form, console().config.zone
    body: dict[str, Any] = {"dry_run": bool(form.get("dry_run"))}
    if form.get("max_messages", "").strip():
        raw = form["max_messages"].strip()
        body["max_messages"] = int(raw) if raw.isdigit() else raw
    if form.get("send_after", "").strip():
        raw = form["send_after"].strip()
        try:
            body["send_after"] = datetime.fromisoformat(raw).replace(tzinfo=zone).isoformat()
        except ValueError:
            body["send_after"] = raw
    if form.get("no_quiet_hours"):
        body["quiet_hours"] = None
    try:
        answer = console().api.start_drop(signed_in_key(), campaign_id, body)
    except ApiProblem as problem:
        errors, loose = field_errors(problem, ["max_messages", "send_after", "quiet_hours"])
        for message in loose:
            notify(message)
        if not errors:
            return redirect(url_for("detail.show", campaign_id=campaign_id) + "#drops", 303)
        campaign = console().api.campaign(signed_in_key(), campaign_id)
        page = render_template(
            "campaign_detail.html",
            campaign=campaign,
            report=None,
            report_charts={},
            drops=_drops(campaign_id),
            drop_errors=errors,
            drop_values=form,
        )
        return page, problem.status
    if body["dry_run"]:
        notify(
            "Dry run: {eligible} eligible, {coupons} coupons, {messages} messages.",
            eligible=answer.get("eligible"),
            coupons=answer.get("expected_coupons"),
            messages=answer.get("expected_messages"),
        )
    else:
        notify("Drop started.")
    return redirect(url_for("detail.show", campaign_id=campaign_id) + "#drops", 303)


def cancel_drop(campaign_id: str, drop_id: str) -> ResponseReturnValue:
    try:
        console().api.cancel_drop(signed_in_key(), campaign_id, drop_id)
    except ApiProblem as problem:
        notify(problem.detail or problem.title)
    else:
        notify("Drop cancelled.")
    return redirect(url_for("detail.show", campaign_id=campaign_id) + "#drops", 303)


def report_charts(report: dict[str, Any] | None) -> dict[str, Any]:
    """The SVG charts of a report, by name (those the report has the figures for)."""
    if report is None:
        return {}
    from flask import g

    from services.console import i18n

    def money(v: float) -> str:
        return i18n.yen(v, g.lang)

    out: dict[str, Any] = {}
    points = (report.get("pacing") or {}).get("points") or []
    if points:
        out["pacing"] = _pacing_chart(report["pacing"], points, money)
        days, per_day = _coupons_per_day(points)
        if days:
            out["daily"] = charts.daily_bars(
                text("Coupons per day"), days, [(text("Issued"), per_day, charts.TEAL)]
            )
    lift = report.get("lift") or {}
    treat, hold = lift.get("treatment_mean_spend"), lift.get("holdout_mean_spend")
    if treat is not None and hold is not None:
        n = max(1, int(lift.get("treated_customers") or 1))
        low, high = lift.get("ci95_low"), lift.get("ci95_high")
        out["lift"] = charts.interval(
            text("Treatment against holdout"),
            treat,
            hold,
            None if low is None else low / n,
            None if high is None else high / n,
            money,
        )
    share, fee = report["revenue_share"], report["per_call_fee"]
    out["earnings"] = charts.hbars(
        text("Revenue share against per-call fee"),
        [
            (text("Share owed"), share["owed"], charts.TEAL),
            (text("attributed"), share["on_attributed_basis"] or 0, charts.GOLD),
            (text("incremental"), share["on_incremental_basis"] or 0, charts.GREY),
            (text("Per-call fee would have earned"), fee["would_have_earned"], charts.CORAL),
        ],
        money,
    )
    return out


def _pacing_chart(pacing: dict[str, Any], points: list[dict[str, Any]], money: Any) -> Any:
    unit = "coupons" if pacing.get("max_coupons") is not None else "committed"
    actual = [float(p[unit] or 0) for p in points]
    ideal = [float(p.get(f"ideal_{unit}") or 0) for p in points]
    fmt = money if unit == "committed" else (lambda v: f"{v:,.0f}")
    return charts.lines(
        f"{text('Pacing')} ({text(str(pacing.get('mode') or 'even'))})",
        len(points),
        [(text("Issued"), actual, charts.TEAL), (text("even"), ideal, charts.GREY)],
        fmt,
    )


def _coupons_per_day(points: list[dict[str, Any]]) -> tuple[list[str], list[float]]:
    """Coupons issued per retailer-time day, from the pacing curve's cumulative counts."""
    zone = console().config.zone
    last_by_day: dict[str, int] = {}
    for p in points:
        day = datetime.fromisoformat(p["at"]).astimezone(zone).date().isoformat()
        last_by_day[day] = max(last_by_day.get(day, 0), int(p["coupons"]))
    days = sorted(last_by_day)
    totals = [last_by_day[d] for d in days]
    return days, [float(t - (totals[i - 1] if i else 0)) for i, t in enumerate(totals)]
