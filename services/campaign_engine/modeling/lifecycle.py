"""The model lifecycle on a database: judge a candidate on the logged decisions, promote or refuse.

Shared by `tenin model evaluate --candidate`, `promote` and `retrain` (modeling/lifecycle_cli.py,
modeling/retrain.py); docs/learning.md tells the whole loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import candidate, promotion, registry
from services.campaign_engine.modeling.gate import Verdict, judge
from services.campaign_engine.modeling.outcomes import logged_outcomes
from shared.model.scoring import ModelLoadError, PropensityScorer


@dataclass(frozen=True)
class Place:
    """Where the models and the log live, and how the engine serves (built once by the CLI)."""

    model_dirs: dict[str, Path]  # kind -> its directory (CURRENT + versions)
    policy: PolicyConfig  # as the engine decides: mode, epsilon, margin rate
    margins: dict[str, float]  # kind -> promotion margin, yen per decision
    schema: str | None = None
    spend_window: timedelta = timedelta(days=7)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def kind_of(session: Session, version: str) -> str:
    """The kind a version is registered as; PromotionError if it is not registered."""
    for kind in registry.KINDS:
        if registry.get(session, kind, version) is not None:
            return kind
    raise promotion.PromotionError(f"{version} is not registered (see `tenin model list`)")


def evaluate_candidate(
    session: Session,
    place: Place,
    kind: str,
    version: str,
    since: datetime,
    until: datetime,
) -> candidate.Comparison:
    """The candidate's and the serving version's policies, estimated on the same logged decisions."""
    logged = logged_outcomes(
        session,
        since=since,
        until=until,
        spend_window=place.spend_window,
        schema=place.schema,
        now=place.now,
    )
    model_dir = place.model_dirs[kind]
    champion_version = registry.serving(session, kind)
    ours = candidate.load(model_dir, kind, version)
    theirs = (
        candidate.load(model_dir, kind, champion_version)
        if champion_version and champion_version != version
        else None
    )
    if kind == "propensity":
        log = candidate.bandit_log(logged, place.policy.margin_rate)
        return candidate.compare_propensity(log, ours, theirs, place.policy)
    # The uplift policy prices the expected discount with the serving propensity model.
    p_hat = (
        PropensityScorer(place.model_dirs["propensity"]).score(logged.candidates_X)
        if len(logged.candidates_X)
        else logged.candidate_scores
    )
    policy = PolicyConfig(
        mode=place.policy.mode,
        epsilon=place.policy.epsilon,
        temperature=place.policy.temperature,
        margin_rate=place.policy.margin_rate,
        uplift=True,
    )
    return candidate.compare_uplift(candidate.spend_log(logged), p_hat, ours, theirs, policy)


@dataclass(frozen=True)
class Judged:
    """A candidate's comparison, the gate's verdict, and what was done about it."""

    comparison: candidate.Comparison
    verdict: Verdict
    outcome: promotion.Outcome


def judge_and_promote(
    session: Session,
    place: Place,
    version: str,
    since: datetime,
    until: datetime,
    *,
    actor: str,
    reason: str = "",
    force: bool = False,
    kind: str | None = None,
) -> Judged:
    """Estimate, apply the gate, then promote or record the refusal (in the caller's transaction)."""
    kind = kind or kind_of(session, version)
    try:
        comparison = evaluate_candidate(session, place, kind, version, since, until)
    except ModelLoadError as exc:
        raise promotion.PromotionError(str(exc)) from exc
    verdict = judge(
        comparison.dr("candidate"),
        comparison.dr("champion"),
        place.margins[kind],
        comparison.difference,
    )
    outcome = promotion.promote(
        session,
        place.model_dirs[kind],
        kind,
        version,
        verdict,
        actor=actor,
        reason=reason,
        force=force,
    )
    return Judged(comparison, verdict, outcome)
