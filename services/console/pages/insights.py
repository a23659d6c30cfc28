"""Forecast before launch and the explanation of a decision (docs/console.md § Pages; the
APIs are docs/interfaces.md § Decision explanations and forecasts)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request

from services.console import charts, i18n
from services.console.api_client import ApiProblem, not_available
from services.console.web import campaign_or_404, console, signed_in_key, text

FORECAST_ROWS = (
    ("requests", "Requests", "count"),
    ("coupons", "Coupons", "count"),
    ("redemptions", "Redemptions", "count"),
    ("discount_cost", "Discount cost", "yen"),
    ("incremental_revenue", "Incremental revenue", "yen"),
    ("revenue_share", "Revenue share", "yen"),
)


def blueprint() -> Blueprint:
    bp = Blueprint("insights", __name__)
    bp.add_url_rule(
        "/campaigns/<campaign_id>/forecast", "forecast", forecast, methods=["GET", "POST"]
    )
    bp.add_url_rule("/explain", "explain", explain)
    bp.add_url_rule("/decisions/<decision_id>", "decision", decision)
    return bp


def forecast(campaign_id: str) -> tuple[str, int]:
    """GET: the campaign and a button; POST: the forecast with its intervals and basis."""
    api, key = console().api, signed_in_key()
    campaign = campaign_or_404(campaign_id)
    result: dict[str, Any] | None = None
    problem_text, status = None, 200
    if request.method == "POST":
        try:
            result = api.forecast(key, campaign_id)
        except ApiProblem as problem:
            problem_text = (
                text("Not available yet.")
                if not_available(problem)
                else (problem.detail or problem.title)
            )
            status = 200 if not_available(problem) else problem.status
    return render_template(
        "forecast.html",
        campaign=campaign,
        result=result,
        rows=FORECAST_ROWS,
        burn=_burn_chart(result),
        problem=problem_text,
    ), status


def _burn_chart(result: dict[str, Any] | None) -> Any:
    burn = (result or {}).get("burn") or []
    if not burn:
        return None
    used = [float(p.get("budget_used_pct") or 0) for p in burn]
    return charts.lines(
        text("Budget burn"),
        len(burn),
        [(text("Budget burn") + " %", used, charts.TEAL)],
        lambda v: f"{v:,.0f}%",
    )


def explain() -> tuple[str, int]:
    """Look up a decision by its id or by a coupon code, and say why it came out so."""
    decision_id = request.args.get("decision_id", "").strip()
    code = request.args.get("coupon_code", "").strip()
    if not decision_id and not code:
        submitted = "decision_id" in request.args or "coupon_code" in request.args
        message = text("Give a decision id or a coupon code.") if submitted else None
        return _explain_page(decision_id, code, None, {"decision_id": message} if message else {})
    if not decision_id:
        try:
            found = console().api.decisions_by_code(signed_in_key(), code)
        except ApiProblem as problem:
            return _explain_page("", code, None, _errors(problem, "coupon_code"), problem.status)
        if not found:
            message = text("No decision found for this coupon code.")
            return _explain_page("", code, None, {"coupon_code": message}, 404)
        decision_id = found[0]["decision_id"]
    return _explained(decision_id, code)


def decision(decision_id: str) -> tuple[str, int]:
    return _explained(decision_id, "")


def _explained(decision_id: str, code: str) -> tuple[str, int]:
    try:
        result = console().api.explanation(signed_in_key(), decision_id, g.lang)
    except ApiProblem as problem:
        return _explain_page(
            decision_id, code, None, _errors(problem, "decision_id"), problem.status
        )
    return _explain_page(decision_id, code, result, {})


def _errors(problem: ApiProblem, field: str) -> dict[str, str]:
    messages = [e["message"] for e in problem.errors] or [problem.detail or problem.title]
    return {field: " ".join(messages)}


def _explain_page(
    decision_id: str,
    code: str,
    result: dict[str, Any] | None,
    errors: dict[str, str],
    status: int = 200,
) -> tuple[str, int]:
    page = render_template(
        "explain.html",
        decision_id=decision_id,
        coupon_code=code,
        result=result,
        errors=errors,
        money=lambda v: i18n.yen(v, g.lang),
    )
    return page, status if status < 500 else 502
