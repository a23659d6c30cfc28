"""Reports and statements over HTTP (marketer keys): docs/interfaces.md § Reports and statements.

A campaign's report is the live one until its statements are final, then the frozen final
one (final.py), in JSON, CSV and HTML alike.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import Campaign
from services.redemption_tracker.reports.final import served_report
from services.redemption_tracker.reports.page import report_page
from services.redemption_tracker.reports.report import report_csv
from services.redemption_tracker.reports.schemas import (
    Report,
    Statement,
    StatementQuery,
    is_campaign_id,
)
from services.redemption_tracker.reports.statements import build_statement, statement_csv
from shared.auth import require_role
from shared.fields import YEAR_MONTH_PATTERN
from shared.http import (
    Operation,
    ProblemError,
    invalid,
    parse_query,
    path_parameter,
    query_parameter,
)

OPERATIONS = [
    Operation(
        "GET",
        "/v1/campaigns/{campaign_id}/report",
        "Campaign report (?format=csv for a CSV export)",
        None,
        Report,
        parameters=[
            path_parameter("campaign_id"),
            query_parameter("format", type="string", enum=["json", "csv"]),
        ],
    ),
    Operation(
        "GET",
        "/v1/statements",
        "Revenue-share statement of one month",
        None,
        Statement,
        parameters=[
            query_parameter("campaign_id", required=True),
            query_parameter("period", required=True, type="string", pattern=YEAR_MONTH_PATTERN),
            query_parameter("format", type="string", enum=["json", "csv"]),
        ],
    ),
    Operation(
        "GET",
        "/v1/campaigns/{campaign_id}/report.html",
        "The campaign report as a self-contained HTML page with its charts",
        parameters=[path_parameter("campaign_id")],
        content_type="text/html",
    ),
]


def _campaign_or_404(s: Session, campaign_id: str) -> Campaign:
    campaign = s.get(Campaign, campaign_id) if is_campaign_id(campaign_id) else None
    if campaign is None:
        raise ProblemError(404, "Unknown campaign", f"the tracker has no campaign {campaign_id!r}")
    return campaign


def reports_blueprint(tracker: Tracker) -> Blueprint:
    """GET /v1/campaigns/{id}/report[.html] and GET /v1/statements (marketer keys)."""
    bp = Blueprint("reports", __name__)
    marketer = require_role("marketer", sessions=tracker.sessions, secret=tracker.api_key_secrets)

    @bp.get("/v1/campaigns/<campaign_id>/report")
    @marketer
    def get_report(campaign_id: str) -> Response:
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv"):
            raise invalid(
                "format must be json or csv",
                [{"field": "format", "message": "must be json or csv"}],
            )
        with tracker.sessions() as s:
            report = served_report(s, _campaign_or_404(s, campaign_id), tracker.clock())
        if fmt == "csv":
            return Response(
                report_csv(report),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="report-{campaign_id}.csv"'},
            )
        return jsonify(report)

    @bp.get("/v1/campaigns/<campaign_id>/report.html")
    @marketer
    def get_report_page(campaign_id: str) -> Response:
        with tracker.sessions() as s:
            page = report_page(s, _campaign_or_404(s, campaign_id), tracker.clock())
        return Response(page, mimetype="text/html")

    @bp.get("/v1/statements")
    @marketer
    def get_statement() -> Response:
        query = parse_query(StatementQuery)
        with tracker.sessions() as s:
            campaign = _campaign_or_404(s, query.campaign_id)
            statement = build_statement(s, campaign, query.period, tracker.clock())
        if query.format == "csv":
            name = f"statement-{query.campaign_id}-{query.period}.csv"
            return Response(
                statement_csv(statement),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return jsonify(statement)

    return bp
