"""The promotion gate: a candidate model serves only if its logged-data estimate holds up.

Rule (docs/architecture.md § Measurement, "Promotion gate"; docs/learning.md § The promotion
gate): the candidate's doubly-robust lower 95% bound
must not fall below the champion's doubly-robust estimate by more than the margin, in yen
per decision. Both are estimated on the same logged decisions, so the candidate's bound is
taken paired: the champion's estimate plus the lower bound of the paired difference
(candidate - champion), in which the outcome noise the two share cancels. Without the
difference (older callers) the candidate's own interval is used. `TENIN_PROMOTION_MARGIN` sets it for every kind; without it each kind has its own
default (DEFAULT_MARGINS), because their rewards differ in scale and noise: a propensity
policy's redemption value is a few yen per decision, an uplift policy's profit counts the
whole window's spend (hundreds of yen, with visit-to-visit noise). With no champion the
candidate is promoted; with no logged decisions to judge it on, it is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from services.campaign_engine.modeling.evaluate import Estimate

DEFAULT_MARGINS = {"propensity": 2.0, "uplift": 20.0}  # yen per decision
MARGIN_ENV = "TENIN_PROMOTION_MARGIN"


def promotion_margin(environ: Mapping[str, str], kind: str) -> float:
    """The configured margin (yen per decision); ValueError naming the variable if it is unusable."""
    raw = environ.get(MARGIN_ENV, "").strip()
    if not raw:
        return DEFAULT_MARGINS[kind]
    try:
        margin = float(raw)
    except ValueError:
        raise ValueError(f"{MARGIN_ENV} must be a number of yen, got {raw!r}") from None
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"{MARGIN_ENV} must be a finite number >= 0, got {raw!r}")
    return margin


@dataclass(frozen=True)
class Verdict:
    """The gate's answer, with the figures it rests on (recorded with every promotion or refusal)."""

    promote: bool
    reason: str
    candidate: Estimate | None
    champion: Estimate | None
    margin: float
    difference: Estimate | None = None

    def as_json(self) -> dict[str, Any]:
        """The figures as plain JSON (for the promotion record)."""
        return {
            "rule": "candidate DR low >= champion DR - margin",
            "margin": self.margin,
            "candidate_dr": asdict(self.candidate) if self.candidate else None,
            "champion_dr": asdict(self.champion) if self.champion else None,
            "difference_dr": asdict(self.difference) if self.difference else None,
            "passed": self.promote,
        }


def judge(
    candidate: Estimate | None,
    champion: Estimate | None,
    margin: float,
    difference: Estimate | None = None,
) -> Verdict:
    """Promote or refuse a candidate from the doubly-robust estimates of both policies.

    `difference` is candidate - champion estimated paired on the same decisions; with it the
    candidate's lower bound is champion + difference.low.
    """
    if candidate is None or candidate.n == 0 or not math.isfinite(candidate.low):
        return Verdict(
            False, "no logged decisions to judge the candidate on", None, champion, margin
        )
    if champion is None:
        return Verdict(True, "no model serves yet", candidate, None, margin)
    paired = difference is not None and difference.n > 0 and math.isfinite(difference.low)
    low = champion.value + difference.low if paired and difference else candidate.low
    how = "paired DR lower bound" if paired else "DR lower bound"
    floor = champion.value - margin
    passed = low >= floor
    reason = (
        f"{how} {low:.2f} {'>=' if passed else 'is below'} {floor:.2f} (the champion's "
        f"{champion.value:.2f} less the margin {margin:g}) yen per decision"
    )
    return Verdict(passed, reason, candidate, champion, margin, difference if paired else None)
