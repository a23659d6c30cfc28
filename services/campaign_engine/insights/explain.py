"""Why a decision came out as it did (docs/interfaces.md § Decision explanations and forecasts).

Read from the decision log row alone (arm, reason, each candidate's score and expected value,
the feature matrix as it was at decision time) plus the model version that scored it: its
ONNX trees give each feature's contribution to the explained offer's score (trees.py). The
reference rows are the last logged decisions before this one, so the same decision always gets
the same explanation; with too few of them, the reference is a customer the engine knows
nothing about, offered the same coupon at the same moment. Nothing here runs on the decision
path, and the contributions are kept per decision (ExplanationCache).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.insights.trees import TreeLeaves, UnsupportedModel, contributions
from services.campaign_engine.insights.trees import read_leaves as _read_leaves
from services.campaign_engine.models import Decision
from shared.model.features import FEATURE_NAMES, N_FEATURES, CustomerFeatures
from shared.model.scoring import ModelLoadError, read_card

REFERENCE_ROWS = 64  # logged decisions the contributions are measured against
MIN_REFERENCE_ROWS = 8  # fewer than this: compare with a customer the engine knows nothing of
TOP_FEATURES = 8

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_DEFAULT = CustomerFeatures()
# What a customer the engine knows nothing about looks like, column by column.
_NEW_CUSTOMER = {
    "recency_days": _DEFAULT.recency_days,
    "frequency_per_week": _DEFAULT.frequency_per_week,
    "monetary_avg": _DEFAULT.monetary_avg,
    "days_since_follow": _DEFAULT.days_since_follow,
    "coupons_issued": float(_DEFAULT.coupons_issued),
    "past_redemption_rate": _DEFAULT.past_redemption_rate,
    "linked": 0.0,
    "hour_affinity": 0.0,
    "category_affinity": 0.0,
}


@dataclass(frozen=True)
class LoggedDecision:
    """A decision log row as the explanation reads it, whichever log format wrote it."""

    decision_id: str
    decided_at: datetime
    arm: str
    reason: str | None
    campaign_id: str | None
    offer_id: str | None
    coupon_code: str | None
    expires_at: datetime | None
    score: float | None
    model_version: str
    candidates: list[dict[str, Any]]
    matrix: np.ndarray | None  # (candidates, N_FEATURES) as scored, or None
    chosen: int | None  # the row of `matrix` the policy picked


def logged_decision(row: Decision) -> LoggedDecision:
    """Parse a row: features are {"candidates": [...], "chosen": i} now, a bare vector before."""
    matrix, chosen = parse_features(row.features)
    return LoggedDecision(
        decision_id=row.decision_id,
        decided_at=row.decided_at,
        arm=row.arm,
        reason=getattr(row, "reason", None) or _older_reason(row.arm),
        campaign_id=row.campaign_id,
        offer_id=row.offer_id,
        coupon_code=row.coupon_code,
        expires_at=row.expires_at,
        score=row.score,
        model_version=row.model_version,
        candidates=list(getattr(row, "candidates", None) or []),
        matrix=matrix,
        chosen=chosen,
    )


def _older_reason(arm: str) -> str | None:
    # Rows logged before reasons were kept: the arm still tells three of them apart.
    return {"holdout": "holdout", "explore": "explore", "treatment": "exploit"}.get(arm)


def parse_features(text: str | None) -> tuple[np.ndarray | None, int | None]:
    """The logged matrix and chosen row; (None, None) when there is none or it is unreadable."""
    if not text:
        return None, None
    try:
        data = orjson.loads(text)  # a forecast reads every customer's row: json is 10x slower
        if isinstance(data, dict):
            matrix = np.asarray(data.get("candidates") or [], dtype=np.float64)
            chosen = data.get("chosen")
        else:  # the first log format: the chosen offer's vector alone
            matrix, chosen = np.asarray([data], dtype=np.float64), 0
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None, None
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] != N_FEATURES:
        return None, None
    return matrix, chosen if isinstance(chosen, int) and 0 <= chosen < len(matrix) else None


def logged_row(text: str | None) -> np.ndarray | None:
    """The chosen (else the first) candidate's row of a logged matrix, or None."""
    matrix, chosen = parse_features(text)
    return None if matrix is None else matrix[chosen if chosen is not None else 0]


def explained_row(decision: LoggedDecision) -> int | None:
    """The candidate explained: the one chosen, else the one with the highest expected value."""
    if decision.matrix is None:
        return None
    if decision.chosen is not None:
        return decision.chosen
    values = [c.get("ev") for c in decision.candidates]
    if len(values) == len(decision.matrix) and all(isinstance(v, int | float) for v in values):
        return int(np.argmax(np.asarray(values, dtype=np.float64)))
    return None


@dataclass(frozen=True)
class FeatureEffect:
    name: str
    value: float
    contribution: float  # log-odds of P(redeem)


@dataclass(frozen=True)
class Contributions:
    """What moved the explained offer's score (computed once per decision)."""

    row: int | None
    effects: list[FeatureEffect] = field(default_factory=list)
    score: float | None = None  # the model's P(redeem) for the explained row
    reference_score: float | None = None  # mean P(redeem) of the reference rows
    reference: Literal["logged_decisions", "new_customer"] | None = None
    reference_rows: int = 0
    notes: list[str] = field(default_factory=list)
    category_code: float = 0.0
    unit: str = "log_odds"  # of P(redeem); "yen" of incremental margin for an uplift version


@lru_cache(maxsize=8)
def model_leaves(model_dir: Path, version: str) -> TreeLeaves:
    """The trees of one propensity version (cached: versions never change once written)."""
    card = read_card(model_dir, version)
    if card.get("kind", "propensity") != "propensity":
        raise UnsupportedModel(f"model {version} is a {card.get('kind')} model")
    return _read_leaves(model_dir / version / card["files"]["model"], N_FEATURES)


@lru_cache(maxsize=8)
def uplift_leaves(uplift_dir: Path, version: str) -> tuple[TreeLeaves, TreeLeaves]:
    """The trees of one uplift version: spend if sent, spend if not (yen regressors)."""
    card = read_card(uplift_dir, version)
    if card.get("kind") != "uplift":
        raise UnsupportedModel(f"model {version} is a {card.get('kind')} model")
    files = card["files"]
    return (
        _read_leaves(uplift_dir / version / files["treated"], N_FEATURES),
        _read_leaves(uplift_dir / version / files["control"], N_FEATURES),
    )


class _UpliftTrees:
    """margin x (spend if sent - spend if not): what the uplift policy ranks by, in yen.

    Tree contributions add, so the two regressors' contributions to this are their
    difference times the margin rate."""

    def __init__(self, pair: tuple[TreeLeaves, TreeLeaves], margin_rate: float) -> None:
        self.pair, self.margin_rate = pair, margin_rate

    def output(self, rows: np.ndarray) -> np.ndarray:
        treated, control = self.pair
        return self.margin_rate * (treated.output(rows) - control.output(rows))

    def contributions(self, x: np.ndarray, refs: np.ndarray) -> np.ndarray:
        treated, control = self.pair
        return self.margin_rate * (
            contributions(treated, x, refs) - contributions(control, x, refs)
        )


def _trees(
    decision: LoggedDecision, model_dir: Path, uplift_dir: Path | None, margin_rate: float
) -> tuple[TreeLeaves | _UpliftTrees, str]:
    """The trees of the version the decision logged, propensity or uplift, and their unit."""
    if uplift_dir is not None and (Path(uplift_dir) / decision.model_version).is_dir():
        pair = uplift_leaves(Path(uplift_dir), decision.model_version)
        return _UpliftTrees(pair, margin_rate), "yen"
    return model_leaves(Path(model_dir), decision.model_version), "log_odds"


def reference_rows(session: Session, decision: LoggedDecision) -> np.ndarray:
    """The explained rows of the last REFERENCE_ROWS logged decisions before this one."""
    texts = session.scalars(
        select(Decision.features)
        .where(
            Decision.decided_at <= decision.decided_at,
            Decision.decision_id != decision.decision_id,
            Decision.features.is_not(None),
        )
        .order_by(Decision.decided_at.desc())
        .limit(REFERENCE_ROWS)
    )
    rows = []
    for text in texts:
        matrix, chosen = parse_features(text)
        if matrix is not None:
            rows.append(matrix[chosen if chosen is not None else 0])
    return np.asarray(rows, dtype=np.float64).reshape(-1, N_FEATURES)


def new_customer_reference(row: np.ndarray) -> np.ndarray:
    """The same offer at the same moment, for a customer the engine knows nothing about."""
    ref = np.array(row, dtype=np.float64)
    for name, value in _NEW_CUSTOMER.items():
        ref[_COL[name]] = value
    # With no basket history the minimum basket is compared with a typical basket.
    ref[_COL["min_basket_vs_monetary"]] = ref[_COL["min_basket_ratio"]]
    return ref[None, :]


def explain_contributions(
    session: Session,
    decision: LoggedDecision,
    model_dir: Path,
    uplift_dir: Path | None = None,
    margin_rate: float = 0.30,
) -> Contributions:
    """Each feature's contribution to the explained offer's score, largest first.

    The model is the version the decision logged: a propensity version (contributions to
    the log-odds of P(redeem)) or, when the uplift model ranked, an uplift version
    (contributions in yen to margin x (spend if sent - spend if not))."""
    row = explained_row(decision)
    if row is None or decision.matrix is None:
        return Contributions(None, notes=["no_features_logged"])
    try:
        leaves, unit = _trees(decision, model_dir, uplift_dir, margin_rate)
    except (ModelLoadError, UnsupportedModel, KeyError, OSError) as exc:
        return Contributions(row, notes=[f"model_unavailable: {exc}"])
    x = decision.matrix[row]
    refs = reference_rows(session, decision)
    kind: Literal["logged_decisions", "new_customer"] = "logged_decisions"
    if len(refs) < MIN_REFERENCE_ROWS:
        refs, kind = new_customer_reference(x), "new_customer"
    phi = (
        leaves.contributions(x, refs)
        if isinstance(leaves, _UpliftTrees)
        else contributions(leaves, x, refs)
    )
    order = np.argsort(-np.abs(phi), kind="stable")
    effects = [
        FeatureEffect(FEATURE_NAMES[j], float(x[j]), round(float(phi[j]), 4))
        for j in order[:TOP_FEATURES]
        if abs(phi[j]) > 1e-6
    ]
    return Contributions(
        row,
        effects,
        score=float(leaves.output(x[None, :])[0]),
        reference_score=float(leaves.output(refs).mean()),
        reference=kind,
        reference_rows=len(refs),
        category_code=float(x[_COL["category"]]),
        unit=unit,
    )


class ExplanationCache:
    """Contributions per decision id (a decision never changes), bounded, thread-safe."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._items: OrderedDict[str, Contributions] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, decision_id: str) -> Contributions | None:
        with self._lock:
            found = self._items.get(decision_id)
            if found is not None:
                self._items.move_to_end(decision_id)
            return found

    def put(self, decision_id: str, value: Contributions) -> None:
        with self._lock:
            self._items[decision_id] = value
            self._items.move_to_end(decision_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
