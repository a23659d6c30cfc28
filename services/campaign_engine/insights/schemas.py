"""Response and request models of the explanation, coupon lookup and forecast routes
(docs/interfaces.md § Decision explanations and forecasts); they generate /openapi.json too."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CandidateOut(Model):
    campaign_id: str | None
    offer_id: str | None
    score: float | None = Field(description="P(redeem) the model gave the offer")
    expected_value: float | None = Field(description="yen, as the policy ranked it")
    probability: float | None = Field(description="chance the logging policy had to pick it")
    chosen: bool


class FeatureOut(Model):
    name: str
    value: float
    contribution: float = Field(description="change in the log-odds of P(redeem)")
    text: str


class ReferenceOut(Model):
    kind: Literal["logged_decisions", "new_customer"]
    rows: int
    score: float | None = Field(description="mean P(redeem) of the reference rows")


class ExplanationOut(Model):
    decision_id: str
    decided_at: datetime
    language: Literal["ja", "en"]
    arm: str
    reason: str | None
    reason_text: str
    campaign_id: str | None
    offer_id: str | None
    coupon_code: str | None
    model_version: str
    candidates: list[CandidateOut]
    explained_offer_id: str | None = Field(
        description="the offer the features explain: the chosen one, else the best-valued one"
    )
    score: float | None
    features: list[FeatureOut]
    reference: ReferenceOut | None
    summary: str
    notes: list[str]


class ExplanationQuery(Model):
    lang: Literal["ja", "en"] | None = None


class DecisionOut(Model):
    decision_id: str
    decided_at: datetime
    campaign_id: str | None
    offer_id: str | None
    arm: str
    reason: str | None
    coupon_code: str | None
    expires_at: datetime | None
    model_version: str
    explanation: str = Field(description="path of the decision's explanation")


class DecisionList(Model):
    items: list[DecisionOut]


class DecisionQuery(Model):
    coupon_code: str = Field(min_length=1, max_length=64)


class ForecastIn(Model):
    """All optional: the forecast runs on the campaign as it is stored."""

    seed: int = Field(
        default=7, strict=True, ge=0, le=2**31 - 1, description="for the interval draws"
    )


class Interval(Model):
    estimate: float
    low: float = Field(description="2.5th percentile")
    high: float = Field(description="97.5th percentile")


class BurnPoint(Model):
    day: date
    coupons: float = Field(description="cumulative expected coupons by the end of the day")
    discount_cost: float = Field(description="cumulative expected discount cost (yen)")
    budget_used_pct: float | None = Field(description="share of the binding budget used, 0-100")


class ForecastBasis(Model):
    kind: Literal["model", "logs", "both"]
    model_version: str | None
    decision_rows: int = Field(description="logged decisions the rates rest on")
    similar_campaigns: int
    coupons_observed: int = Field(description="coupons of similar campaigns with known outcome")


class ForecastOut(Model):
    campaign_id: str
    status: str
    window_days: float
    eligible_audience: int
    treated_audience: int
    holdout_audience: int
    requests: Interval
    coupons: Interval
    redemptions: Interval
    discount_cost: Interval
    incremental_revenue: Interval
    revenue_share: Interval
    burn: list[BurnPoint]
    basis: ForecastBasis
    confidence: Literal["low", "medium", "high"]
    notes: list[str]
