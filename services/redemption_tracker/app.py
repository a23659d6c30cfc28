"""The redemption tracker's HTTP app: the POS feed, the till pre-check, reports, statements."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from pydantic_core import to_json

from services.redemption_tracker.bootstrap import SERVICE, Tracker, bootstrap, tune_gc
from services.redemption_tracker.ingest import ingest
from services.redemption_tracker.models import Campaign
from services.redemption_tracker.precheck import precheck
from services.redemption_tracker.report_page import report_page
from services.redemption_tracker.reports import build_report, build_statement, report_csv
from services.redemption_tracker.schemas import (
    MAX_BATCH,
    BatchResult,
    PosBatch,
    PosBatchDoc,
    PrecheckResult,
    Report,
    Statement,
    StatementQuery,
    VoidRequest,
    VoidResult,
    validate_transactions,
)
from services.redemption_tracker.voids import void_transaction
from shared.auth import require_role
from shared.config import Settings
from shared.http import (
    Operation,
    ProblemError,
    invalid,
    parse_json_body,
    parse_query,
    service_app,
)
from shared.logging import configure_logging
from shared.readiness import readiness_checks

TITLE = "tenin redemption tracker"
VERSION = "1.0.0"


def _own_store(body_store: str) -> None:
    """A POS key posts only for its own store (admin keys for any)."""
    principal = g.principal
    if principal.role != "admin" and principal.store_id != body_store:
        raise ProblemError(
            403,
            "Forbidden",
            f"this key belongs to store {principal.store_id!r}, not {body_store!r}",
            errors=[{"field": "store_id", "message": "not your store"}],
        )


def pos_blueprint(tracker: Tracker) -> Blueprint:
    """POST /v1/pos/transactions, POST /v1/pos/voids, GET /v1/coupons/{code}."""
    bp = Blueprint("pos", __name__)
    pos_only = require_role("pos", sessions=tracker.sessions, secret=tracker.secret)

    @bp.post("/v1/pos/transactions")
    @pos_only
    def post_transactions() -> Any:
        batch = parse_json_body(PosBatch)
        _own_store(batch.store_id)
        results = ingest(tracker, batch.store_id, validate_transactions(batch.transactions))
        # Serialised in Rust: a 1,000-result answer is the largest thing the tracker sends.
        return Response(to_json({"results": results}), mimetype="application/json")

    @bp.post("/v1/pos/voids")
    @pos_only
    def post_void() -> Any:
        req = parse_json_body(VoidRequest)
        _own_store(req.store_id)
        return jsonify(void_transaction(tracker, req.store_id, req))

    @bp.get("/v1/coupons/<path:code>")
    @pos_only
    def get_coupon(code: str) -> Any:
        store_id = request.args.get("store_id") or g.principal.store_id or ""
        if g.principal.store_id is not None:
            _own_store(store_id)
        result = precheck(tracker, code, store_id)
        if result["expires_at"] is not None:
            result["expires_at"] = result["expires_at"].isoformat()
        return jsonify(result)

    return bp


def reports_blueprint(tracker: Tracker) -> Blueprint:
    """GET /v1/campaigns/{id}/report and GET /v1/statements (marketer keys)."""
    bp = Blueprint("reports", __name__)
    marketer = require_role("marketer", sessions=tracker.sessions, secret=tracker.secret)

    def campaign_or_404(s: Any, campaign_id: str) -> Campaign:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None:
            raise ProblemError(
                404, "Unknown campaign", f"the tracker has no campaign {campaign_id!r}"
            )
        return campaign

    @bp.get("/v1/campaigns/<campaign_id>/report")
    @marketer
    def get_report(campaign_id: str) -> Any:
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv"):
            raise invalid(
                "format must be json or csv",
                [{"field": "format", "message": "must be json or csv"}],
            )
        with tracker.sessions() as s:
            report = build_report(s, campaign_or_404(s, campaign_id), tracker.clock())
        if fmt == "csv":
            return Response(
                report_csv(report),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="report-{campaign_id}.csv"'},
            )
        return jsonify(report)

    @bp.get("/v1/campaigns/<campaign_id>/report.html")
    @marketer
    def get_report_page(campaign_id: str) -> Any:
        now = tracker.clock()
        with tracker.sessions() as s:
            report = build_report(s, campaign_or_404(s, campaign_id), now)
            page = report_page(s, report, now)
        return Response(page, mimetype="text/html")

    @bp.get("/v1/statements")
    @marketer
    def get_statement() -> Any:
        query = parse_query(StatementQuery)
        with tracker.sessions() as s:
            campaign = campaign_or_404(s, query.campaign_id)
            return jsonify(build_statement(s, campaign, query.period, tracker.clock()))

    return bp


def operations() -> list[Operation]:
    """Every endpoint, for /openapi.json."""
    code = [
        {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "store_id", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    return [
        Operation(
            "POST",
            "/v1/pos/transactions",
            f"Record up to {MAX_BATCH} till transactions; one result each",
            PosBatchDoc,
            BatchResult,
        ),
        Operation(
            "POST", "/v1/pos/voids", "Void a transaction (idempotent)", VoidRequest, VoidResult
        ),
        Operation(
            "GET",
            "/v1/coupons/{code}",
            "Pre-check a code at the till (changes nothing)",
            None,
            PrecheckResult,
            parameters=code,
        ),
        Operation(
            "GET",
            "/v1/campaigns/{campaign_id}/report",
            "Campaign report (?format=csv for a CSV export)",
            None,
            Report,
            parameters=[
                {
                    "name": "campaign_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["json", "csv"]},
                },
            ],
        ),
        Operation(
            "GET",
            "/v1/statements",
            "Revenue-share statement of one month",
            None,
            Statement,
            parameters=[
                {
                    "name": "campaign_id",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": "period",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                },
            ],
        ),
        Operation(
            "GET",
            "/v1/campaigns/{campaign_id}/report.html",
            "The campaign report as a self-contained HTML page with its charts",
            parameters=[
                {
                    "name": "campaign_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            content_type="text/html",
        ),
    ]


def create_app(settings: Settings | None = None, *, tracker: Tracker | None = None) -> Flask:
    """The application factory: nothing connects until a request needs it."""
    if settings is None and tracker is None:  # a served process (`tenin serve`)
        settings = Settings.from_env(service=SERVICE)
        configure_logging(SERVICE, settings.log_level, settings.log_json)
        tune_gc()
    tracker = tracker or bootstrap(settings)
    return service_app(
        SERVICE,
        title=TITLE,
        version=VERSION,
        max_request_bytes=tracker.settings.max_request_bytes,
        blueprints=[pos_blueprint(tracker), reports_blueprint(tracker)],
        operations=operations(),
        # POS tills only need the database: Kafka is reached later, by the outbox relay.
        readiness=readiness_checks(database=tracker.engine),
    )
