"""What a forecast reads from the database: the eligible audience with each customer's last
logged features, the request rate, and how similar campaigns' coupons turned out
(docs/interfaces.md § Decision explanations and forecasts).

The engine keeps live customer features in Redis; the forecast reads only PostgreSQL. Each
customer's features are those logged with their last decision (the features as they were
then); a customer never decided for gets the features of a customer the engine knows nothing
about. Audience rules on behaviour are checked against those logged features.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.campaign_engine.campaigns.offers import live_offers, offer_category
from services.campaign_engine.insights.explain import logged_row, parse_features
from services.campaign_engine.modeling.outcomes import logged_outcomes
from services.campaign_engine.models import (
    SCHEMA,
    Campaign,
    Coupon,
    Customer,
    Decision,
    RedemptionSeen,
)
from shared.events import DEFAULT_LANGUAGE
from shared.model.features import (
    CATEGORIES,
    FEATURE_NAMES,
    N_FEATURES,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
)

RATE_WINDOW = timedelta(days=28)  # logged requests per customer-day are counted over this
_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_NEUTRAL_CONTEXT = DecisionContext(local_hour=12, weekday=2)


@dataclass(frozen=True)
class AudienceRows:
    """The eligible customers' last logged feature rows (one per customer)."""

    base: np.ndarray  # (n, N_FEATURES): customer and context columns as last logged
    logged: int  # how many rows came from the log (the rest are "unknown customer" rows)
    categories_bought: list[set[str]]  # categories each customer was seen buying (from the log)


def _default_row() -> np.ndarray:
    """A customer the engine knows nothing about, asking at a neutral moment."""
    offer = OfferFeatures("amount", 0.0, "other")
    return feature_matrix(CustomerFeatures(), _NEUTRAL_CONTEXT, [offer])[0].astype(np.float64)


def audience_rows(session: Session, campaign: Campaign) -> AudienceRows:
    """Following, not opted-out customers in the campaign's audience, with their logged rows."""
    audience: Mapping[str, Any] = campaign.audience or {}
    latest = (
        select(
            Decision.customer_id,
            Decision.features,
            func.row_number()
            .over(partition_by=Decision.customer_id, order_by=Decision.decided_at.desc())
            .label("n"),
        )
        .where(Decision.features.is_not(None))
        .subquery()
    )
    query = (
        select(Customer.customer_id, Customer.language, Customer.linked, latest.c.features)
        .outerjoin(latest, (latest.c.customer_id == Customer.customer_id) & (latest.c.n == 1))
        .where(Customer.following.is_(True), Customer.opted_out.is_(False))
    )
    if audience.get("linked_only"):
        query = query.where(Customer.linked.is_(True))
    languages = audience.get("languages")
    wants = audience.get("bought_categories") is not None
    default = _default_row()
    rows: list[np.ndarray] = []
    bought: list[set[str]] = []
    from_log: list[bool] = []
    for _, language, _, text in session.execute(query):
        if languages is not None and (language or DEFAULT_LANGUAGE) not in languages:
            continue
        row = logged_row(text)
        from_log.append(row is not None)
        rows.append(default if row is None else row)
        # Only a bought_categories rule needs every logged candidate (forecasts read everyone).
        bought.append(_bought(text) if wants and row is not None else set())
    base = np.asarray(rows, dtype=np.float64).reshape(-1, N_FEATURES)
    keep = admitted(base, bought, audience)
    return AudienceRows(
        base[keep],
        int(np.count_nonzero(np.asarray(from_log, dtype=bool) & keep)),
        [b for b, k in zip(bought, keep, strict=True) if k],
    )


def _bought(text: str | None) -> set[str]:
    """Categories the customer was seen buying: those of logged candidates with affinity > 0."""
    matrix, _ = parse_features(text)
    if matrix is None:
        return set()
    cat, aff = _COL["category"], _COL["category_affinity"]
    return {_category(r[cat]) for r in matrix if r[aff] > 0}


def _category(code: float) -> str:
    i = int(round(code))
    return CATEGORIES[i] if 0 <= i < len(CATEGORIES) else "other"


def admitted(base: np.ndarray, bought: list[set[str]], audience: Mapping[str, Any]) -> np.ndarray:
    """Which rows meet the audience's behaviour rules (decisions/audience.py's, on logged rows)."""
    keep = np.ones(len(base), dtype=bool)
    checks = (
        ("max_days_since_follow", "days_since_follow", np.less_equal),
        ("min_visits_per_week", "frequency_per_week", np.greater_equal),
        ("max_visits_per_week", "frequency_per_week", np.less_equal),
        ("min_avg_basket", "monetary_avg", np.greater_equal),
        ("max_avg_basket", "monetary_avg", np.less_equal),
    )
    for rule, column, compare in checks:
        bound = audience.get(rule)
        if bound is not None:
            keep &= compare(base[:, _COL[column]], float(bound))
    wanted = audience.get("bought_categories")
    if wanted is not None:
        keep &= np.array([bool(b & set(wanted)) for b in bought], dtype=bool)
    return keep


@dataclass(frozen=True)
class RequestRate:
    """Logged offer requests per following customer per day."""

    requests: int
    customer_days: float


def request_rate(session: Session, now: datetime) -> RequestRate:
    """Decisions over the last RATE_WINDOW per following customer-day."""
    requests = session.scalar(
        select(func.count()).select_from(Decision).where(Decision.decided_at >= now - RATE_WINDOW)
    )
    customers = session.scalar(
        select(func.count()).select_from(Customer).where(Customer.following.is_(True))
    )
    return RequestRate(int(requests or 0), float(customers or 0) * RATE_WINDOW.days)


@dataclass(frozen=True)
class SimilarHistory:
    """How coupons of similar campaigns turned out, against what the model predicted."""

    campaigns: int
    coupons: int  # coupons whose validity is over
    redeemed: int
    predicted: float  # sum of the model's P(redeem) for those coupons


def similar_history(session: Session, campaign: Campaign, now: datetime) -> SimilarHistory:
    """Coupons of other campaigns sharing a discount type and category with this one's offers."""
    wanted = {(o["discount"]["type"], offer_category(o)) for o in live_offers(campaign)}
    similar = [
        c.campaign_id
        for c in session.scalars(
            select(Campaign).where(Campaign.campaign_id != campaign.campaign_id)
        )
        if wanted & {(o["discount"]["type"], offer_category(o)) for o in c.offers}
    ]
    if not similar:
        return SimilarHistory(0, 0, 0, 0.0)
    redeemed = (
        select(RedemptionSeen.coupon_code)
        .where(RedemptionSeen.voided.is_(False))
        .distinct()
        .subquery()
    )
    row = session.execute(
        select(
            func.count(func.distinct(Coupon.campaign_id)),
            func.count(Coupon.code),
            func.count(redeemed.c.coupon_code),
            func.coalesce(func.sum(Decision.score), 0.0),
        )
        .join(Decision, Decision.decision_id == Coupon.decision_id)
        .outerjoin(redeemed, redeemed.c.coupon_code == Coupon.code)
        .where(Coupon.campaign_id.in_(similar), Coupon.expires_at < now)
    ).one()
    return SimilarHistory(int(row[0]), int(row[1]), int(row[2]), float(row[3] or 0.0))


EFFECT_WINDOW = timedelta(days=35)  # decisions whose spend window closed, for the effect
SPEND_WINDOW = timedelta(days=7)
MIN_ARM_DECISIONS = 30  # treated and holdout decisions each, before the logs measure the effect
MODEL_VIEW_ROWS = 5_000
EFFECT_TTL = timedelta(minutes=15)  # the effect is the same for every campaign: kept this long


class EffectCache:
    """The last LoggedEffect, recomputed after EFFECT_TTL (it reads every decision of a month)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[datetime, LoggedEffect] | None = None

    def get(self, session: Session, now: datetime) -> LoggedEffect:
        with self._lock:
            if self._value is not None and now - self._value[0] < EFFECT_TTL:
                return self._value[1]
        effect = logged_effect(session, now)
        with self._lock:
            self._value = (now, effect)
        return effect


@dataclass(frozen=True)
class LoggedEffect:
    """What a coupon did to spend in the logs: treated against holdout decisions (randomised)."""

    treated: int
    holdout: int
    difference: float  # mean spend over SPEND_WINDOW after the decision, treated - holdout (yen)
    standard_error: float  # Welch's
    treated_rows: np.ndarray  # the treated decisions' feature rows, for the model's view of them


def logged_effect(session: Session, now: datetime) -> LoggedEffect:
    """The holdout comparison over the last EFFECT_WINDOW, through the one outcome join
    (modeling/outcomes.py); skipped, after one count, when either arm is too thin."""
    since, closed = now - EFFECT_WINDOW, now - SPEND_WINDOW
    counts = dict(
        session.execute(
            select(Decision.arm, func.count())
            .where(Decision.decided_at >= since, Decision.decided_at < closed)
            .where(Decision.arm.in_(("treatment", "explore", "holdout")))
            .group_by(Decision.arm)
        ).all()
    )
    treated_n = int(counts.get("treatment", 0) + counts.get("explore", 0))
    holdout_n = int(counts.get("holdout", 0))
    if min(treated_n, holdout_n) < MIN_ARM_DECISIONS:
        return LoggedEffect(treated_n, holdout_n, 0.0, float("inf"), np.zeros((0, N_FEATURES)))
    postgres = session.get_bind().dialect.name == "postgresql"
    logged = logged_outcomes(
        session,
        since=since,
        until=now,
        spend_window=SPEND_WINDOW,
        schema=SCHEMA if postgres else None,
        now=now,
    )
    treated = logged.treated
    rows = logged.X[treated]
    if len(rows) > MODEL_VIEW_ROWS:  # the model's mean over the treated needs no more than this
        rows = rows[np.random.default_rng(0).choice(len(rows), MODEL_VIEW_ROWS, replace=False)]
    holdout = logged.arm == "holdout"
    spend_t, spend_h = logged.spend_after[treated], logged.spend_after[holdout]
    if len(spend_t) < 2 or len(spend_h) < 2:
        return LoggedEffect(len(spend_t), len(spend_h), 0.0, float("inf"), rows)
    se = float(np.sqrt(spend_t.var(ddof=1) / len(spend_t) + spend_h.var(ddof=1) / len(spend_h)))
    return LoggedEffect(
        len(spend_t),
        len(spend_h),
        float(spend_t.mean() - spend_h.mean()),
        se,
        rows,
    )
