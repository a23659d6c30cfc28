"""A month's revenue-share statement with its CSV, and the model page (docs/console.md
§ Pages; the APIs are docs/interfaces.md § Reports and statements and § Decision
explanations and forecasts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue

from services.console.api_client import ApiProblem, not_available
from services.console.web import console, field_errors, signed_in_key


def blueprint() -> Blueprint:
    bp = Blueprint("reports", __name__)
    bp.add_url_rule("/statements", "statements", statements)
    bp.add_url_rule("/statements.csv", "statement_csv", statement_csv)
    bp.add_url_rule("/models", "models", models)
    return bp


def statements() -> tuple[str, int]:
    api, key = console().api, signed_in_key()
    campaigns = [c for c in api.campaigns(key) if c["status"] != "draft"]
    campaign_id = request.args.get("campaign_id", "")
    period = request.args.get("period", "") or datetime.now(console().config.zone).strftime("%Y-%m")
    statement: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    loose: list[str] = []
    status = 200
    if campaign_id:
        try:
            statement = api.statement(key, campaign_id, period)
        except ApiProblem as problem:
            errors, loose = field_errors(problem, ["campaign_id", "period"])
            status = problem.status if problem.status < 500 else 502
    page = render_template(
        "statements.html",
        campaigns=campaigns,
        campaign_id=campaign_id,
        period=period,
        statement=statement,
        errors=errors,
        loose=loose,
    )
    return page, status


def statement_csv() -> ResponseReturnValue:
    """The tracker's CSV, passed through as a download."""
    campaign_id = request.args.get("campaign_id", "")
    period = request.args.get("period", "")
    content, name = console().api.statement_csv(signed_in_key(), campaign_id, period)
    return Response(
        content,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def models() -> str:
    """The serving version of each kind, every version's card, and the gate's verdicts."""
    data: dict[str, Any] | None
    try:
        data = console().api.models(signed_in_key())
    except ApiProblem as problem:
        if not not_available(problem):
            raise
        data = None
    return render_template("models.html", data=data)
