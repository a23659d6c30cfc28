"""Scoring a decision batch (docs/architecture.md § Decisions): the candidate rows of every
request go through each model in one call, then each request chooses among its own rows.

A feature or model failure costs coupons, never the batch: when the stacked call fails,
each request is scored on its own, so only the requests whose rows are bad get no coupon
(`model_error`), as a single decision would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import structlog

from services.campaign_engine.decisions.policy import (
    Choice,
    PolicyConfig,
    Scorer,
    UpliftScoring,
    choose_scored,
    no_coupon,
    ranks_by_uplift,
    score_rows,
)
from shared.model.features import CustomerFeatures, DecisionContext, OfferFeatures, feature_matrix
from shared.model.scoring import InvalidFeatures

log = structlog.get_logger(__name__)

Scores = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


@dataclass(frozen=True)
class ToScore:
    """One request's candidates, as the model sees them."""

    customer: CustomerFeatures
    context: DecisionContext
    offers: list[OfferFeatures]
    message_costs: list[float] | None = None  # a push: yen per candidate (candidates.py)


def ranking_version(
    scorer: Scorer, config: PolicyConfig, uplift_scorer: UpliftScoring | None
) -> str:
    """The version of the model whose values rank the candidates (logged with a decision)."""
    if uplift_scorer is not None and ranks_by_uplift(config, uplift_scorer):
        return uplift_scorer.model_version
    return scorer.model_version


def choose_many(
    scorer: Scorer,
    batch: Sequence[ToScore],
    config: PolicyConfig,
    rng: np.random.Generator,
    uplift_scorer: UpliftScoring | None = None,
) -> list[Choice]:
    """policy.decide for every request of a batch, with one call per model on all rows."""
    choices: list[Choice | None] = [None] * len(batch)
    matrices: dict[int, np.ndarray] = {}
    for i, item in enumerate(batch):
        if not item.offers:
            choices[i] = Choice(None, 1.0, None, 0.0, "none")
            continue
        try:
            matrices[i] = feature_matrix(item.customer, item.context, item.offers)
        except Exception as exc:
            choices[i] = _fallback(exc, scorer)
    scored = _score_stacked(scorer, matrices, config, uplift_scorer)
    for i, matrix in matrices.items():
        scores = scored[i]
        if isinstance(scores, Choice):
            choices[i] = scores
            continue
        p, treated, control = scores
        item = batch[i]
        try:
            choices[i] = choose_scored(
                matrix,
                p,
                treated,
                control,
                item.offers,
                config,
                rng,
                message_costs=item.message_costs,
            )
        except Exception as exc:
            choices[i] = _fallback(exc, scorer)
    return [c if c is not None else no_coupon("not_scored") for c in choices]


def _score_stacked(
    scorer: Scorer,
    matrices: dict[int, np.ndarray],
    config: PolicyConfig,
    uplift_scorer: UpliftScoring | None,
) -> dict[int, Scores | Choice]:
    """Each request's scores from one stacked call; a failed stack is scored request by
    request, and a request that still fails gets its no-coupon Choice."""
    if not matrices:
        return {}
    try:
        p, treated, control = score_rows(
            scorer, np.vstack(list(matrices.values())), config, uplift_scorer
        )
    except Exception:
        return {i: _score_alone(scorer, m, config, uplift_scorer) for i, m in matrices.items()}
    out: dict[int, Scores | Choice] = {}
    start = 0
    for i, matrix in matrices.items():
        rows = slice(start, start + len(matrix))
        start = rows.stop
        out[i] = (
            p[rows],
            None if treated is None else treated[rows],
            None if control is None else control[rows],
        )
    return out


def _score_alone(
    scorer: Scorer, matrix: np.ndarray, config: PolicyConfig, uplift_scorer: UpliftScoring | None
) -> Scores | Choice:
    try:
        return score_rows(scorer, matrix, config, uplift_scorer)
    except Exception as exc:
        return _fallback(exc, scorer)


def _fallback(exc: Exception, scorer: Scorer) -> Choice:
    """No coupon rather than a guess, with the reason the decision log keeps."""
    if isinstance(exc, InvalidFeatures):
        log.error("invalid_features_no_coupon", error=str(exc), model=scorer.model_version)
        return no_coupon(f"invalid_features: {exc}")
    log.exception("scoring_failed_no_coupon", model=scorer.model_version)
    return no_coupon(f"scoring_error: {type(exc).__name__}: {exc}")
