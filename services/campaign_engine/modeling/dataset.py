"""Training rows: from the simulator (the first model) or from the decision log joined with redemptions."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import text

from shared.model.features import (
    N_FEATURES,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
)
from shared.model.simulator import (
    Customer,
    Population,
    draw_window_outcome,
    observed_features,
    p_redeem_many,
    random_context,
    sample_offers,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRows:
    """Model input and label; p_true only exists for simulated rows (the hidden truth, for scoring)."""

    X: np.ndarray  # float32 (n, N_FEATURES), built by shared.model.features.feature_matrix
    y: np.ndarray  # int8: redeemed within the validity window
    source: str
    p_true: np.ndarray | None = None
    propensity: np.ndarray | None = None  # logged probability of the action, for decision-log rows

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class SimRequest:
    """One simulated offer request: who asks, when, what they said, and the candidate offers."""

    customer: Customer  # hidden traits inside: truth side only
    features: CustomerFeatures  # what tenin sees
    context: DecisionContext
    offers: list[OfferFeatures]


@dataclass(frozen=True)
class SimWorld:
    """A population and what tenin knows about each customer at its start."""

    population: Population
    features: list[CustomerFeatures]

    @classmethod
    def create(cls, n_customers: int, seed: int) -> SimWorld:
        """Generate the population and its observable history."""
        population = Population.generate(n_customers, seed)
        return cls(population, observed_features(population, seed=seed))

    def requests(self, n: int, seed: int, k: tuple[int, int] = (4, 4)) -> Iterator[SimRequest]:
        """`n` requests from customers drawn at random, each with k[0]..k[1] candidate offers."""
        rng = np.random.default_rng([self.population.seed, seed, 11])
        who = rng.integers(len(self.population), size=n)
        for i in who:
            customer = self.population[int(i)]
            offers = sample_offers(rng, int(rng.integers(k[0], k[1] + 1)))
            yield SimRequest(customer, self.features[int(i)], random_context(customer, rng), offers)


def simulated_rows(n_rows: int, seed: int, n_customers: int | None = None) -> TrainingRows:
    """Coupons handed out at random (the exploration a first model learns from), redeemed per the truth."""
    world = SimWorld.create(n_customers or max(2000, n_rows // 10), seed)
    rng = np.random.default_rng([seed, 12])
    per_request = 4
    xs, ps = [], []
    for req in world.requests(
        (n_rows + per_request - 1) // per_request, seed, (per_request, per_request)
    ):
        xs.append(feature_matrix(req.features, req.context, req.offers))
        ps.append(p_redeem_many(req.customer, req.context, req.offers))
    X, p = np.concatenate(xs)[:n_rows], np.concatenate(ps)[:n_rows]
    y = (rng.random(len(p)) < p).astype(np.int8)
    return TrainingRows(X=X, y=y, source="simulator", p_true=p)


@dataclass(frozen=True)
class UpliftRows:
    """Randomised treated/holdout rows with the outcome both groups share: spend in the window."""

    X: np.ndarray
    treated: np.ndarray  # bool
    spend: np.ndarray  # yen spent within the validity window (before discounts)
    redeemed: np.ndarray  # int8 (always 0 for holdout)
    # Per row, for a policy-corrected fit (modeling/from_logs.py); None: every row counts once.
    weights: np.ndarray | None = None


def simulated_uplift_rows(n_rows: int, seed: int, treat_share: float = 0.5) -> UpliftRows:
    """Each row's offer is sent or held back at random; everyone's purchases are observed."""
    world = SimWorld.create(max(2000, n_rows // 10), seed)
    rng = np.random.default_rng([seed, 13])
    per_request = 4
    xs, treated, spend, redeemed = [], [], [], []
    for req in world.requests(
        (n_rows + per_request - 1) // per_request, seed, (per_request, per_request)
    ):
        xs.append(feature_matrix(req.features, req.context, req.offers))
        for offer in req.offers:  # independent draws: as if each were a separate request
            t = bool(rng.random() < treat_share)
            outcome = draw_window_outcome(req.customer, req.context, offer, t, rng)
            treated.append(t)
            spend.append(outcome.spend)
            redeemed.append(outcome.redeemed)
    return UpliftRows(
        np.concatenate(xs)[:n_rows],
        np.array(treated[:n_rows]),
        np.array(spend[:n_rows]),
        np.array(redeemed[:n_rows], dtype=np.int8),
    )


def _table(name: str, schema: str | None) -> str:
    return f"{schema}.{name}" if schema else name


def _as_datetime(value: Any) -> datetime | None:
    """Timestamps come back as datetime (Postgres) or ISO text (SQLite); naive ones are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def decision_log_records(session: Any, schema: str | None = None) -> list[dict[str, Any]]:
    """Non-holdout decisions, each with its coupon's first unvoided redemption time (or None)
    and what a push of it costs (a drop's decision: its campaign's message_cost; else 0)."""
    sql = text(f"""
        SELECT d.decision_id, d.arm, d.propensity, d.score, d.model_version, d.features,
               d.coupon_code, d.decided_at, d.expires_at, r.first_redeemed_at,
               COALESCE(c.message_cost, 0) AS message_cost
        FROM {_table("decisions", schema)} d
        LEFT JOIN {_table("drop_members", schema)} dm ON dm.request_id = d.request_id
        LEFT JOIN {_table("drops", schema)} dr ON dr.drop_id = dm.drop_id
        LEFT JOIN {_table("campaigns", schema)} c ON c.campaign_id = dr.campaign_id
        LEFT JOIN (
            SELECT coupon_code, MIN(redeemed_at) AS first_redeemed_at
            FROM {_table("redemptions_seen", schema)}
            WHERE NOT voided
            GROUP BY coupon_code
        ) r ON r.coupon_code = d.coupon_code
        WHERE d.arm <> 'holdout'
        ORDER BY d.decided_at, d.decision_id
    """)
    return [dict(row._mapping) for row in session.execute(sql)]


def redeemed_in_window(record: dict[str, Any]) -> bool:
    """A coupon counts as redeemed only if used between its issue and its expiry."""
    at = _as_datetime(record.get("first_redeemed_at"))
    decided, expires = _as_datetime(record["decided_at"]), _as_datetime(record.get("expires_at"))
    return (
        at is not None
        and decided is not None
        and decided <= at
        and (expires is None or at <= expires)
    )


def window_closed(record: dict[str, Any], now: datetime) -> bool:
    """The label is final: redeemed already, or the coupon has expired."""
    expires = _as_datetime(record.get("expires_at"))
    return redeemed_in_window(record) or (expires is not None and expires <= now)


def parse_features(raw: Any) -> Any:
    """The logged `features` JSON (a list of floats, or {"candidates": [...], "chosen": i})."""
    return json.loads(raw) if isinstance(raw, str | bytes) else raw


def rows_from_decision_log(
    session: Any, schema: str | None = None, now: datetime | None = None
) -> TrainingRows:
    """One row per issued coupon whose outcome is known; label = redeemed within its validity window."""
    now = now or datetime.now(UTC)
    xs, ys, props = [], [], []
    skipped = 0
    for rec in decision_log_records(session, schema):
        if rec["coupon_code"] is None or rec["features"] is None or not window_closed(rec, now):
            continue
        feats = parse_features(rec["features"])
        if isinstance(feats, dict):
            chosen = feats.get("chosen")
            feats = feats["candidates"][chosen] if chosen is not None else None
        vec = np.asarray(feats, dtype=np.float32) if feats is not None else None
        if vec is None or vec.shape != (N_FEATURES,) or not np.isfinite(vec).all():
            skipped += 1  # written by an older feature layout, or damaged
            continue
        xs.append(vec)
        ys.append(redeemed_in_window(rec))
        props.append(float(rec["propensity"]))
    if skipped:
        log.warning(
            "skipped %d logged decisions whose feature vector does not fit %d features",
            skipped,
            N_FEATURES,
        )
    X = np.stack(xs) if xs else np.zeros((0, N_FEATURES), dtype=np.float32)
    return TrainingRows(
        X=X, y=np.array(ys, dtype=np.int8), source="decision-log", propensity=np.array(props)
    )
