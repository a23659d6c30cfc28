"""What a campaign would do, before or while it runs (docs/interfaces.md § Decision
explanations and forecasts).

Per eligible customer, the campaign's offers are scored as the policy would score them (one
ONNX call over every customer x offer row), giving the share of requests that would get a
coupon, its P(redeem), its discount and (with the uplift model) the spend it would cause. The
logs supply the request rate and, from similar campaigns' expired coupons, how the model's
P(redeem) compared with what was redeemed. Intervals come from drawing the uncertain rates
(request rate, calibration, uplift) and the counting noise, 2,000 times; with no history the
draws are deliberately wide and the answer says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from scipy.stats import poisson

from services.campaign_engine.budget.limits import face_value
from services.campaign_engine.campaigns.offers import live_offers
from services.campaign_engine.decisions.candidates import offer_features
from services.campaign_engine.decisions.policy import PolicyConfig, Scorer, offer_values
from services.campaign_engine.insights.forecast_data import (
    MIN_ARM_DECISIONS,
    SPEND_WINDOW,
    AudienceRows,
    LoggedEffect,
    RequestRate,
    SimilarHistory,
)
from services.campaign_engine.models import Campaign
from shared.model.features import (
    DEFAULT_TYPICAL_BASKET,
    FEATURE_NAMES,
    INTENT_CATEGORIES,
    INTENTS,
    CustomerFeatures,
    DecisionContext,
    feature_matrix,
)

DRAWS = 2_000
PRIOR_RATE = 0.05  # requests per customer-day assumed when nothing is logged (mean of the prior)
MIN_HISTORY_COUPONS = 50  # coupons of similar campaigns before their outcome calibrates the model
_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_OFFER_COLS = [_COL[n] for n in ("discount_depth", "discount_type", "category", "min_basket_ratio")]


class UpliftModel:
    """What the forecast needs of the uplift pair: spend if sent and if not, per row."""

    def __init__(self, scorer: Any) -> None:
        self._scorer = scorer

    def uplift(self, matrix: np.ndarray) -> np.ndarray:
        treated, control = self._scorer.score(matrix)
        return np.asarray(treated) - np.asarray(control)


@dataclass(frozen=True)
class Forecast:
    """Every figure of a forecast: estimates with 95% intervals, the burn, and what it rests on."""

    window_days: float
    eligible: int
    treated: int
    holdout: int
    figures: dict[str, tuple[float, float, float]]  # name -> (estimate, low, high)
    burn: list[dict[str, Any]]
    basis: Literal["model", "logs", "both"]
    confidence: Literal["low", "medium", "high"]
    notes: list[str] = field(default_factory=list)


def offer_rows(base: np.ndarray, offers: Sequence[dict[str, Any]]) -> np.ndarray:
    """(n, k, F): each customer's logged row with each offer of the campaign put in."""
    feats = [offer_features(o) for o in offers]
    template = feature_matrix(CustomerFeatures(), DecisionContext(12, 2), feats)
    x = np.repeat(base[:, None, :], len(feats), axis=1)
    x[:, :, _OFFER_COLS] = template[None, :, _OFFER_COLS]
    same_category = base[:, None, _COL["category"]] == template[None, :, _COL["category"]]
    x[:, :, _COL["category_affinity"]] = np.where(
        same_category, base[:, None, _COL["category_affinity"]], 0.0
    )
    # intent code x offer -> whether what was said makes the offer relevant
    fits = np.array(
        [[f.category in INTENT_CATEGORIES.get(i, frozenset()) for f in feats] for i in INTENTS],
        dtype=np.float64,
    )
    codes = np.clip(base[:, _COL["intent"]].astype(int), 0, len(INTENTS) - 1)
    x[:, :, _COL["intent_match"]] = fits[codes]
    monetary = base[:, _COL["monetary_avg"]]
    usual = np.where(monetary > 0, monetary, DEFAULT_TYPICAL_BASKET)
    x[:, :, _COL["min_basket_vs_monetary"]] = (
        np.array([f.min_basket for f in feats])[None, :] / usual[:, None]
    )
    return x


def _capped_daily(rate: np.ndarray, cap: int | None) -> np.ndarray:
    """E[min(Poisson(rate), cap)] per draw: coupons a customer can get in one day."""
    if cap is None or rate.size == 0:
        return rate
    # E[min(X, cap)] = sum over k < cap of P(X > k); beyond ~12 standard deviations above the
    # largest rate those terms vanish, so a cap of 10**12 costs what a cap of 40 does.
    top = float(rate.max())
    k = np.arange(min(cap, int(np.ceil(top + 12 * np.sqrt(top) + 30))))
    return np.asarray(poisson.sf(k[None, :], rate[:, None]).sum(axis=1))


def forecast(
    campaign: Campaign,
    audience: AudienceRows,
    rate: RequestRate,
    history: SimilarHistory,
    scorer: Scorer,
    policy: PolicyConfig,
    now: datetime,
    *,
    uplift: UpliftModel | None = None,
    effect: LoggedEffect | None = None,
    seed: int = 7,
) -> Forecast:
    """The campaign's expected coupons, redemptions, cost, burn and incremental revenue."""
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    start = max(now, campaign.starts_at)
    window = max(0.0, (campaign.ends_at - start).total_seconds() / 86400.0)
    offers = live_offers(campaign)
    n = len(audience.base)
    holdout_share = campaign.holdout_pct / 100.0
    treated = n * (1.0 - holdout_share)
    if audience.logged < n:
        notes.append(f"{n - audience.logged} of {n} eligible customers have no logged features")
    # Per customer: what one request would bring under the policy.
    send = p_best = d_best = u_best = np.zeros(0)
    if n and offers:
        rows = offer_rows(audience.base, offers)
        k = len(offers)
        p = scorer.score(rows.reshape(-1, rows.shape[-1]).astype(np.float32)).reshape(n, k)
        feats = [offer_features(o) for o in offers]
        ev = p * offer_values(feats, policy.margin_rate)[None, :]
        best = ev.argmax(axis=1)
        pick = np.arange(n), best
        eps = policy.epsilon if policy.mode == "epsilon_greedy" else 0.0
        send = (1.0 - eps) * (ev[pick] > 0) + eps * k / (k + 1)
        p_best, d_best = p[pick], np.array([face_value(o) for o in offers], dtype=float)[best]
        u_best = np.zeros(n)
        if uplift is not None:
            # Only the offer the policy would send matters: one row per customer.
            u_best = uplift.uplift(rows[pick].astype(np.float32))
    # The uncertain rates, drawn.
    if rate.requests > 0 and rate.customer_days > 0:
        lam = rng.gamma(rate.requests + 0.5, 1.0 / rate.customer_days, DRAWS)
    else:
        lam = rng.gamma(1.0, PRIOR_RATE, DRAWS)
        notes.append("no logged requests: the request rate is a wide prior")
    if history.coupons >= MIN_HISTORY_COUPONS and history.predicted > 0:
        calib = rng.gamma(history.redeemed + 0.5, 1.0 / history.predicted, DRAWS)
    else:
        calib = rng.lognormal(0.0, 0.5, DRAWS)
        notes.append("no similar campaign history: redemptions rest on the model alone")
    caps = campaign.caps or {}
    per_customer = np.minimum(
        float(caps.get("per_customer_total") or np.inf),
        window * _capped_daily(lam, caps.get("per_customer_per_day")),
    )
    requests = rng.poisson(treated * window * lam)
    coupons = rng.poisson(treated * per_customer * mean(send))
    redemptions = coupons * calib * (mean(send * p_best) / max(mean(send), 1e-12))
    discount = redemptions * (mean(send * p_best * d_best) / max(mean(send * p_best), 1e-12))
    budget = campaign.budget or {}
    coupons, scale = _cap(coupons, budget.get("max_coupons"))
    redemptions, discount = redemptions * scale, discount * scale
    redemptions, scale = _cap(redemptions, budget.get("max_redemptions"))
    discount, scale2 = _cap(discount * scale, budget.get("max_discount_total"))
    redemptions = redemptions * scale2
    spend_per = mean(send * u_best) / max(mean(send), 1e-12)
    incremental = coupons * _spend_per_coupon(spend_per, uplift, effect, rng, notes)
    share = campaign.revenue_share or {"pct": 0.0, "basis": "attributed"}
    attributed = redemptions * _basket(audience.base)
    fee_base = np.maximum(incremental, 0.0) if share.get("basis") == "incremental" else attributed
    figures = {
        "requests": requests,
        "coupons": coupons,
        "redemptions": redemptions,
        "discount_cost": discount,
        "incremental_revenue": incremental,
        "revenue_share": fee_base * float(share.get("pct", 0.0)) / 100.0,
    }
    if history.coupons >= MIN_HISTORY_COUPONS or rate.requests > 0 or _usable(effect):
        basis: Literal["model", "logs", "both"] = "both"
    else:
        basis = "model"
    return Forecast(
        window_days=round(window, 3),
        eligible=n,
        treated=int(round(treated)),
        holdout=n - int(round(treated)),
        figures={k: _interval(v) for k, v in figures.items()},
        burn=_burn(start, window, float(np.median(coupons)), float(np.median(discount)), budget),
        basis=basis,
        confidence=_confidence(rate, history, effect),
        notes=notes,
    )


def mean(values: np.ndarray) -> float:
    """The mean, 0 for no values."""
    return float(values.mean()) if len(values) else 0.0


def _cap(values: np.ndarray, limit: Any) -> tuple[np.ndarray, np.ndarray]:
    """Values capped at a budget limit, and the factor each was scaled by."""
    values = np.asarray(values, dtype=float)
    if limit is None:
        return values, np.ones_like(values)
    capped = np.minimum(values, float(limit))
    return capped, np.where(values > 0, capped / np.maximum(values, 1e-12), 1.0)


def _basket(base: np.ndarray) -> float:
    monetary = base[:, _COL["monetary_avg"]] if len(base) else np.zeros(0)
    known = monetary[monetary > 0]
    return float(known.mean()) if len(known) else DEFAULT_TYPICAL_BASKET


def _interval(draws: np.ndarray) -> tuple[float, float, float]:
    lo, mid, hi = np.percentile(np.asarray(draws, dtype=float), [2.5, 50.0, 97.5])
    return round(float(mid), 2), round(float(lo), 2), round(float(hi), 2)


def _burn(
    start: datetime, window: float, coupons: float, discount: float, budget: dict[str, Any]
) -> list[dict[str, Any]]:
    """Cumulative coupons and discount cost at the end of each day, spent evenly over the window."""
    days = max(1, int(np.ceil(window)))
    out = []
    for day in range(1, days + 1):
        share = min(1.0, day / window) if window > 0 else 1.0
        used = [
            v / float(lim) * 100.0
            for v, lim in (
                (coupons * share, budget.get("max_coupons")),
                (discount * share, budget.get("max_discount_total")),
            )
            if lim
        ]
        out.append(
            {
                "day": (start + timedelta(days=day - 1)).date(),
                "coupons": round(coupons * share, 2),
                "discount_cost": round(discount * share, 2),
                "budget_used_pct": round(min(100.0, max(used)), 2) if used else None,
            }
        )
    return out


def _usable(effect: LoggedEffect | None) -> bool:
    """Whether the logs hold enough treated and holdout decisions to measure the coupon's effect."""
    return effect is not None and min(effect.treated, effect.holdout) >= MIN_ARM_DECISIONS


def _spend_per_coupon(
    model_uplift: float,
    uplift: UpliftModel | None,
    effect: LoggedEffect | None,
    rng: np.random.Generator,
    notes: list[str],
) -> np.ndarray:
    """Draws of the spend one coupon of this campaign causes (yen).

    With a holdout comparison in the logs, the model's uplift for this campaign is scaled by
    what the logs measured against what the model predicts for the same logged coupons (or,
    without a model, the measured effect is used as it is); otherwise the model's figure is
    taken with a wide spread.
    """
    if effect is not None and _usable(effect):
        measured = rng.normal(effect.difference, effect.standard_error, DRAWS)
        notes.append(
            f"incremental spend measured on {effect.treated} treated and {effect.holdout} "
            f"holdout decisions ({SPEND_WINDOW.days}-day spend)"
        )
        if uplift is not None and len(effect.treated_rows):
            predicted = mean(uplift.uplift(effect.treated_rows.astype(np.float32)))
            if abs(predicted) >= 1.0:
                return np.asarray(model_uplift * measured / predicted)
        return measured
    if uplift is None:
        notes.append("no uplift model and no holdout comparison: incremental revenue is 0")
        return np.zeros(DRAWS)
    notes.append("no holdout comparison in the logs: incremental revenue rests on the model alone")
    return model_uplift * rng.lognormal(0.0, 0.5, DRAWS)


def _confidence(
    rate: RequestRate, history: SimilarHistory, effect: LoggedEffect | None
) -> Literal["low", "medium", "high"]:
    strong = history.coupons >= 1_000 and rate.requests >= 5_000 and history.campaigns >= 2
    if strong and _usable(effect):
        return "high"
    if history.coupons >= MIN_HISTORY_COUPONS and rate.requests > 0:
        return "medium"
    return "low"
