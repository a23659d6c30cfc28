"""The campaign drop API (docs/interfaces.md § Campaign drops), as a Flask blueprint."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Blueprint, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.campaigns.commands import find_campaign
from services.campaign_engine.drops.commands import (
    DropConflict,
    cancel_drop,
    estimate_drop,
    queue_drop,
)
from services.campaign_engine.drops.eligible import needs_features
from services.campaign_engine.drops.progress import drop_out
from services.campaign_engine.drops.schemas import DropEstimate, DropIn, DropList, DropOut
from services.campaign_engine.features.store import FeatureSource
from services.campaign_engine.models import Campaign, Drop
from shared.auth import require_role
from shared.db import unit_of_work, utcnow
from shared.http import Operation, ProblemError, field_problem, parse_json_body, path_parameter

LIST_LIMIT = 100


@dataclass(frozen=True)
class DropDeps:
    """What the drop routes need: the database, the keys, the features (dry runs with
    feature rules only), the holdout key."""

    sessions: Callable[[], Session]
    secret: str | Sequence[str]
    features: Callable[[], FeatureSource]
    holdout_key: bytes


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")


def _missing(what: str, value: str) -> ProblemError:
    return field_problem(
        404, "Not Found", f"no {what} {value}", field=f"{what}_id", message=f"no such {what}"
    )


def _conflict(exc: DropConflict) -> ProblemError:
    return ProblemError(409, "Conflict", str(exc), extra={"reason": "campaign_not_active"})


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def drops_blueprint(deps: DropDeps) -> Blueprint:
    """The drop routes of a campaign (marketer keys)."""
    bp = Blueprint("drops", __name__)
    marketer = require_role("marketer", sessions=deps.sessions, secret=deps.secret)
    sessions = deps.sessions

    def _campaign(session: Session, campaign_id: str, *, lock: bool = False) -> Campaign:
        campaign = find_campaign(session, campaign_id, lock=lock)
        if campaign is None:
            raise _missing("campaign", campaign_id)
        return campaign

    def _drop(session: Session, campaign_id: str, drop_id: str, *, lock: bool = False) -> Drop:
        if not _is_uuid(drop_id):
            raise _missing("drop", drop_id[:64])  # never a NUL or control character into SQL
        query = select(Drop).where(Drop.drop_id == drop_id, Drop.campaign_id == campaign_id)
        drop = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if drop is None:
            raise _missing("drop", drop_id)
        return drop

    @bp.post("/v1/campaigns/<campaign_id>/drops")
    @marketer
    def create(campaign_id: str) -> Response:
        body = parse_json_body(DropIn)
        now = utcnow()
        if body.dry_run:
            with sessions() as session:
                campaign = _campaign(session, campaign_id)
                wanted = [campaign.audience, body.audience.model_dump() if body.audience else None]
                try:
                    estimate = estimate_drop(
                        session,
                        campaign,
                        body,
                        features=deps.features() if needs_features(wanted) else None,
                        holdout_key=deps.holdout_key,
                        now=now,
                    )
                except DropConflict as exc:
                    raise _conflict(exc) from None
            return _json(estimate)
        with unit_of_work(sessions) as session:
            campaign = _campaign(session, campaign_id, lock=True)
            try:
                drop = queue_drop(session, campaign, body, now)
            except DropConflict as exc:
                raise _conflict(exc) from None
            session.flush()
            out = drop_out(session, drop, campaign, now)
        response = _json(out, 202)
        response.headers["Location"] = f"/v1/campaigns/{campaign_id}/drops/{out.drop_id}"
        return response

    @bp.get("/v1/campaigns/<campaign_id>/drops")
    @marketer
    def list_(campaign_id: str) -> Response:
        now = utcnow()
        with sessions() as session:
            campaign = _campaign(session, campaign_id)
            drops = session.scalars(
                select(Drop)
                .where(Drop.campaign_id == campaign.campaign_id)
                .order_by(Drop.created_at.desc())
                .limit(LIST_LIMIT)
            ).all()
            items = [drop_out(session, d, campaign, now) for d in drops]
        return _json(DropList(items=items))

    @bp.get("/v1/campaigns/<campaign_id>/drops/<drop_id>")
    @marketer
    def get(campaign_id: str, drop_id: str) -> Response:
        with sessions() as session:
            campaign = _campaign(session, campaign_id)
            return _json(
                drop_out(session, _drop(session, campaign_id, drop_id), campaign, utcnow())
            )

    @bp.post("/v1/campaigns/<campaign_id>/drops/<drop_id>/cancel")
    @marketer
    def cancel(campaign_id: str, drop_id: str) -> Response:
        now = utcnow()
        with unit_of_work(sessions) as session:
            campaign = _campaign(session, campaign_id)
            drop = _drop(session, campaign_id, drop_id, lock=True)
            try:
                cancel_drop(session, drop, now)
            except DropConflict as exc:
                raise ProblemError(409, "Conflict", str(exc)) from None
            out = drop_out(session, drop, campaign, now)
        return _json(out)

    return bp


_ID = [path_parameter("campaign_id")]
_DROP = [*_ID, path_parameter("drop_id")]

DROP_OPERATIONS = [
    Operation(
        "POST",
        "/v1/campaigns/{campaign_id}/drops",
        "Queue a drop of an active campaign to its audience (202), or estimate it (dry_run: 200)",
        DropIn,
        DropOut,
        202,
        parameters=_ID,
        other_successes={200: DropEstimate},
    ),
    Operation(
        "GET",
        "/v1/campaigns/{campaign_id}/drops",
        "List a campaign's drops, newest first",
        None,
        DropList,
        parameters=_ID,
    ),
    Operation(
        "GET",
        "/v1/campaigns/{campaign_id}/drops/{drop_id}",
        "A drop's progress and report",
        None,
        DropOut,
        parameters=_DROP,
    ),
    Operation(
        "POST",
        "/v1/campaigns/{campaign_id}/drops/{drop_id}/cancel",
        "Cancel a drop: what is not yet sent is not sent",
        None,
        DropOut,
        parameters=_DROP,
    ),
]
