"""The JSON the insight routes answer with, built from explanations and forecasts
(docs/interfaces.md § Decision explanations and forecasts)."""

from __future__ import annotations

from services.campaign_engine.insights import schemas as out
from services.campaign_engine.insights.explain import Contributions, LoggedDecision
from services.campaign_engine.insights.forecast import Forecast
from services.campaign_engine.insights.forecast_data import RequestRate, SimilarHistory
from services.campaign_engine.insights.wording import (
    Lang,
    Worded,
    feature_text,
    reason_text,
    summary,
)
from services.campaign_engine.models import Campaign


def decision_out(decision: LoggedDecision) -> out.DecisionOut:
    """A decision as the coupon lookup lists it."""
    return out.DecisionOut(
        decision_id=decision.decision_id,
        decided_at=decision.decided_at,
        campaign_id=decision.campaign_id,
        offer_id=decision.offer_id,
        arm=decision.arm,
        reason=decision.reason,
        coupon_code=decision.coupon_code,
        expires_at=decision.expires_at,
        model_version=decision.model_version,
        explanation=f"/v1/decisions/{decision.decision_id}/explanation",
    )


def explanation_out(
    decision: LoggedDecision, found: Contributions, lang: Lang
) -> out.ExplanationOut:
    """The explanation in `lang`: reason, candidates, the features that moved the score."""
    features = [
        out.FeatureOut(
            name=e.name,
            value=e.value,
            contribution=e.contribution,
            text=feature_text(e.name, e.value, found.category_code, lang),
        )
        for e in found.effects
    ]
    candidates = [
        out.CandidateOut(
            campaign_id=c.get("campaign_id"),
            offer_id=c.get("offer_id"),
            score=c.get("score"),
            expected_value=c.get("ev"),
            probability=c.get("p"),
            chosen=i == decision.chosen,
        )
        for i, c in enumerate(decision.candidates)
    ]
    notes = list(found.notes)
    if found.unit == "yen":  # an uplift version ranked: contributions are yen, not log-odds
        notes.append("uplift_model: contributions in yen of incremental margin")
    if not decision.candidates:
        notes.append("candidates_not_logged")
    # An explored offer was drawn at random: its features explain its score, not the choice.
    sent = decision.arm == "treatment"
    words = summary([Worded(f.text, f.contribution) for f in features], lang, sent=sent)
    return out.ExplanationOut(
        decision_id=decision.decision_id,
        decided_at=decision.decided_at,
        language=lang,
        arm=decision.arm,
        reason=decision.reason,
        reason_text=reason_text(decision.reason, lang),
        campaign_id=decision.campaign_id,
        offer_id=decision.offer_id,
        coupon_code=decision.coupon_code,
        model_version=decision.model_version,
        candidates=candidates,
        explained_offer_id=_explained_offer(decision, found, candidates),
        score=found.score if found.score is not None else decision.score,
        features=features,
        reference=out.ReferenceOut(
            kind=found.reference, rows=found.reference_rows, score=found.reference_score
        )
        if found.reference is not None
        else None,
        summary=("" if lang == "ja" else " ").join(
            s for s in (reason_text(decision.reason, lang), words) if s
        ),
        notes=notes,
    )


def _explained_offer(
    decision: LoggedDecision, found: Contributions, candidates: list[out.CandidateOut]
) -> str | None:
    if found.row is None:
        return None
    if found.row < len(candidates):
        return candidates[found.row].offer_id
    return decision.offer_id  # the first log format kept the chosen offer's row alone


def forecast_out(
    campaign: Campaign,
    result: Forecast,
    model_version: str,
    rate: RequestRate,
    history: SimilarHistory,
) -> out.ForecastOut:
    """The forecast with its intervals, burn series and what it rests on."""

    def interval(name: str) -> out.Interval:
        estimate, low, high = result.figures[name]
        return out.Interval(estimate=estimate, low=low, high=high)

    return out.ForecastOut(
        campaign_id=campaign.campaign_id,
        status=campaign.status,
        window_days=result.window_days,
        eligible_audience=result.eligible,
        treated_audience=result.treated,
        holdout_audience=result.holdout,
        requests=interval("requests"),
        coupons=interval("coupons"),
        redemptions=interval("redemptions"),
        discount_cost=interval("discount_cost"),
        incremental_revenue=interval("incremental_revenue"),
        revenue_share=interval("revenue_share"),
        burn=[out.BurnPoint(**point) for point in result.burn],
        basis=out.ForecastBasis(
            kind=result.basis,
            model_version=model_version,
            decision_rows=rate.requests,
            similar_campaigns=history.campaigns,
            coupons_observed=history.coupons,
        ),
        confidence=result.confidence,
        notes=result.notes,
    )
