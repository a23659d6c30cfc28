"""The marketer campaign API (docs/interfaces.md § Marketer campaign API), as a Flask blueprint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask import Blueprint, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from services.campaign_engine import metrics
from services.campaign_engine.campaigns.commands import (
    InvalidCursor,
    UnknownOffer,
    apply_patch,
    change_status,
    create_campaign,
    find_campaign,
    list_campaigns,
    patched_body,
    to_out,
)
from services.campaign_engine.campaigns.rules import CampaignConflict
from services.campaign_engine.campaigns.schemas import (
    CampaignIn,
    CampaignList,
    CampaignOut,
    CampaignPatch,
    ListQuery,
)
from services.campaign_engine.models import Campaign
from shared.auth import require_role
from shared.db import unit_of_work, utcnow
from shared.http import (
    Operation,
    ProblemError,
    field_problem,
    invalid,
    parse_json_body,
    parse_query,
    path_parameter,
    validation_errors,
)


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")


def _not_found(campaign_id: str) -> ProblemError:
    return field_problem(
        404,
        "Not Found",
        f"no campaign {campaign_id}",
        field="campaign_id",
        message="no such campaign",
    )


def _conflict(exc: CampaignConflict) -> ProblemError:
    return ProblemError(
        409,
        "Conflict",
        str(exc),
        errors=[{"field": c.field, "message": c.message} for c in exc.conflicts],
        extra={"reason": exc.reason},
    )


def campaigns_blueprint(sessions: Callable[[], Session], secret: str | Sequence[str]) -> Blueprint:
    """The campaign routes, reading and writing through `sessions` (marketer keys)."""
    bp = Blueprint("campaigns", __name__)
    marketer = require_role("marketer", sessions=sessions, secret=secret)

    def _locked(session: Session, campaign_id: str) -> Campaign:
        campaign = find_campaign(session, campaign_id, lock=True)
        if campaign is None:
            raise _not_found(campaign_id)
        return campaign

    @bp.post("/v1/campaigns")
    @marketer
    def create() -> Response:
        body = parse_json_body(CampaignIn)
        with unit_of_work(sessions) as session:
            campaign = create_campaign(session, body)
            out = to_out(campaign)
        metrics.CAMPAIGN_CHANGES.labels("create").inc()
        response = _json(out, 201)
        response.headers["Location"] = f"/v1/campaigns/{out.campaign_id}"
        return response

    @bp.get("/v1/campaigns")
    @marketer
    def list_() -> Response:
        query = parse_query(ListQuery)
        with sessions() as session:
            try:
                rows, cursor = list_campaigns(session, query)
            except InvalidCursor:
                raise invalid(
                    "the cursor is not one this API gave out",
                    [{"field": "cursor", "message": "invalid cursor"}],
                ) from None
            page = CampaignList(items=[to_out(c) for c in rows], next_cursor=cursor)
        return _json(page)

    @bp.get("/v1/campaigns/<campaign_id>")
    @marketer
    def get(campaign_id: str) -> Response:
        with sessions() as session:
            campaign = find_campaign(session, campaign_id)
            if campaign is None:
                raise _not_found(campaign_id)
            return _json(to_out(campaign))

    @bp.patch("/v1/campaigns/<campaign_id>")
    @marketer
    def patch(campaign_id: str) -> Response:
        change = parse_json_body(CampaignPatch)
        with unit_of_work(sessions) as session:
            campaign = _locked(session, campaign_id)
            try:
                merged = CampaignIn.model_validate(patched_body(campaign, change))
            except ValidationError as exc:
                raise invalid("the campaign would not be valid", validation_errors(exc)) from None
            try:
                apply_patch(session, campaign, merged, change, utcnow())
            except CampaignConflict as exc:
                raise _conflict(exc) from None
            except UnknownOffer as exc:
                raise invalid(
                    "no such offer in this campaign",
                    [{"field": exc.field, "message": "no such offer"}],
                ) from None
            out = to_out(campaign)
        metrics.CAMPAIGN_CHANGES.labels("patch").inc()
        return _json(out)

    def _lifecycle(action: str) -> Callable[[str], Response]:
        def view(campaign_id: str) -> Response:
            with unit_of_work(sessions) as session:
                campaign = _locked(session, campaign_id)
                try:
                    change_status(session, campaign, action, utcnow())
                except CampaignConflict as exc:
                    raise _conflict(exc) from None
                out = to_out(campaign)
            metrics.CAMPAIGN_CHANGES.labels(action).inc()
            return _json(out)

        view.__name__ = f"{action}_campaign"
        return view

    for action in ("activate", "pause", "end"):
        bp.add_url_rule(
            f"/v1/campaigns/<campaign_id>/{action}",
            methods=["POST"],
            view_func=marketer(_lifecycle(action)),
        )
    return bp


_ID = [path_parameter("campaign_id")]


def _query_parameters() -> list[dict[str, Any]]:
    schema = ListQuery.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


OPERATIONS = [
    Operation("POST", "/v1/campaigns", "Create a draft campaign", CampaignIn, CampaignOut, 201),
    Operation(
        "GET",
        "/v1/campaigns",
        "List campaigns, a page at a time",
        None,
        CampaignList,
        parameters=_query_parameters(),
    ),
    Operation(
        "GET", "/v1/campaigns/{campaign_id}", "Get a campaign", None, CampaignOut, parameters=_ID
    ),
    Operation(
        "PATCH",
        "/v1/campaigns/{campaign_id}",
        "Change a campaign (once live: offers, budget and caps only tighten)",
        CampaignPatch,
        CampaignOut,
        parameters=_ID,
    ),
    *[
        Operation(
            "POST",
            f"/v1/campaigns/{{campaign_id}}/{action}",
            summary,
            None,
            CampaignOut,
            parameters=_ID,
        )
        for action, summary in (
            ("activate", "Activate a draft or paused campaign"),
            ("pause", "Pause an active campaign"),
            ("end", "End an active or paused campaign (final)"),
        )
    ],
]
