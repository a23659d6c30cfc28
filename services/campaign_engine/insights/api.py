"""The explanation, coupon lookup and forecast routes (docs/interfaces.md § Decision
explanations and forecasts), as a Flask blueprint for marketer keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog
from flask import Blueprint, Response, request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine, load_uplift_scorer
from services.campaign_engine.campaigns.commands import find_campaign
from services.campaign_engine.decisions.policy import PolicyConfig, Scorer
from services.campaign_engine.insights import schemas as out
from services.campaign_engine.insights.explain import (
    explain_contributions,
    logged_decision,
)
from services.campaign_engine.insights.explain_cache import SharedExplanationCache
from services.campaign_engine.insights.forecast import UpliftModel, forecast
from services.campaign_engine.insights.forecast_data import (
    EffectCache,
    audience_rows,
    request_rate,
    similar_history,
)
from services.campaign_engine.insights.responses import (
    decision_out,
    explanation_out,
    forecast_out,
)
from services.campaign_engine.insights.wording import EXPLAINED_LANGUAGES, Lang
from services.campaign_engine.models import Decision
from shared.auth import require_role
from shared.coupons import UnknownCode, normalize_code
from shared.db import utcnow
from shared.http import (
    Operation,
    ProblemError,
    field_problem,
    invalid,
    parse_json_body,
    parse_query,
    path_parameter,
    query_parameter,
)
from shared.model.scoring import ModelLoadError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class InsightDeps:
    """What the routes use; the scorers load on first use (bootstrap.Engine's)."""

    sessions: Callable[[], Session]
    secret: str | Sequence[str]
    model_dir: Path
    scorer: Callable[[], Scorer]
    policy: PolicyConfig
    uplift: Callable[[], UpliftModel | None] = lambda: None
    clock: Callable[[], datetime] = utcnow
    uplift_dir: Path | None = None  # where an uplift-ranked decision's version is read from
    cache: SharedExplanationCache = field(
        default_factory=lambda: SharedExplanationCache(lambda: None)
    )
    effects: EffectCache = field(default_factory=EffectCache)


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")


def _is_uuid(text: str) -> bool:
    """Ids here are UUIDs: anything else (NUL bytes included) is simply not found."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _language() -> Lang:
    query = parse_query(out.ExplanationQuery)
    if query.lang is not None:
        return query.lang
    best = request.accept_languages.best_match(EXPLAINED_LANGUAGES)
    return "en" if best == "en" else "ja"


def insights_blueprint(deps: InsightDeps) -> Blueprint:
    """GET /v1/decisions, GET /v1/decisions/{id}/explanation, POST /v1/campaigns/{id}/forecast."""
    bp = Blueprint("insights", __name__)
    marketer = require_role("marketer", sessions=deps.sessions, secret=deps.secret)

    @bp.get("/v1/decisions/<decision_id>/explanation")
    @marketer
    def explanation(decision_id: str) -> Response:
        lang = _language()
        with deps.sessions() as session:
            row = session.get(Decision, decision_id) if _is_uuid(decision_id) else None
            if row is None:
                raise field_problem(
                    404,
                    "Not Found",
                    f"no decision {decision_id}",
                    field="decision_id",
                    message="no such decision",
                )
            decision = logged_decision(row)
            found = deps.cache.get(decision_id, decision.model_version)
            if found is None:
                found = explain_contributions(
                    session,
                    decision,
                    deps.model_dir,
                    deps.uplift_dir,
                    deps.policy.margin_rate,
                )
                if not any(n.startswith("model_unavailable") for n in found.notes):
                    deps.cache.put(decision_id, decision.model_version, found)
        return _json(explanation_out(decision, found, lang))

    @bp.get("/v1/decisions")
    @marketer
    def by_coupon() -> Response:
        query = parse_query(out.DecisionQuery)
        try:
            code = normalize_code(query.coupon_code)
        except UnknownCode as exc:
            raise invalid(str(exc), [{"field": "coupon_code", "message": str(exc)}]) from None
        with deps.sessions() as session:
            rows = session.scalars(select(Decision).where(Decision.coupon_code == code)).all()
            items = [decision_out(logged_decision(r)) for r in rows]
        return _json(out.DecisionList(items=items))

    @bp.post("/v1/campaigns/<campaign_id>/forecast")
    @marketer
    def campaign_forecast(campaign_id: str) -> Response:
        body = _forecast_body()
        now = deps.clock()
        with deps.sessions() as session:
            campaign = find_campaign(session, campaign_id) if _is_uuid(campaign_id) else None
            if campaign is None:
                raise field_problem(
                    404,
                    "Not Found",
                    f"no campaign {campaign_id}",
                    field="campaign_id",
                    message="no such campaign",
                )
            if campaign.status not in ("draft", "active") or campaign.ends_at <= now:
                raise ProblemError(
                    409,
                    "Conflict",
                    f"a {campaign.status} campaign whose window is over cannot be forecast"
                    if campaign.ends_at <= now
                    else f"only a draft or active campaign can be forecast, not {campaign.status}",
                    errors=[{"field": "status", "message": "must be draft or active"}],
                    extra={"reason": "not_forecastable"},
                )
            audience = audience_rows(session, campaign)
            rate = request_rate(session, now)
            history = similar_history(session, campaign, now)
            effect = deps.effects.get(session, now)
        scorer = deps.scorer()
        result = forecast(
            campaign,
            audience,
            rate,
            history,
            scorer,
            deps.policy,
            now,
            uplift=deps.uplift(),
            effect=effect,
            seed=body.seed,
        )
        return _json(forecast_out(campaign, result, scorer.model_version, rate, history))

    return bp


def _forecast_body() -> out.ForecastIn:
    """The body may be empty; otherwise it is validated like any JSON body."""
    if not request.get_data(cache=True).strip():
        return out.ForecastIn()
    return parse_json_body(out.ForecastIn)


def insight_deps(engine: Engine) -> InsightDeps:
    """The routes' dependencies from the engine; the models load on the first forecast."""
    uplift: list[UpliftModel | None] = []

    def uplift_model() -> UpliftModel | None:
        if not uplift:
            try:
                uplift.append(UpliftModel(load_uplift_scorer()))
            except ModelLoadError as exc:
                log.warning("forecast_without_uplift_model", error=str(exc))
                uplift.append(None)
        return uplift[0]

    return InsightDeps(
        sessions=engine.sessions,
        secret=engine.settings.secret_keys,
        model_dir=Path(engine.settings.model_dir),
        uplift_dir=Path(engine.settings.uplift_dir),
        scorer=lambda: engine.scorer,
        policy=engine.policy,
        uplift=uplift_model,
        clock=engine.clock,
        cache=SharedExplanationCache(lambda: engine.redis if engine.settings.redis_url else None),
    )


_DECISION = [path_parameter("decision_id")]
INSIGHT_OPERATIONS = [
    Operation(
        "GET",
        "/v1/decisions/{decision_id}/explanation",
        "Why this customer got this coupon or none: arm, reason, candidates, features",
        None,
        out.ExplanationOut,
        parameters=[*_DECISION, query_parameter("lang", enum=list(EXPLAINED_LANGUAGES))],
    ),
    Operation(
        "GET",
        "/v1/decisions",
        "Find the decision behind a coupon",
        None,
        out.DecisionList,
        parameters=[query_parameter("coupon_code", required=True, minLength=1, maxLength=64)],
    ),
    Operation(
        "POST",
        "/v1/campaigns/{campaign_id}/forecast",
        "Forecast a draft or active campaign: audience, coupons, cost, burn, revenue",
        out.ForecastIn,
        out.ForecastOut,
        parameters=[path_parameter("campaign_id")],
        body_required=False,
    ),
]
