"""What the decision log keeps for learning (docs/architecture.md § Measurement): the
feature matrix the policy scored, the reason, and each scored candidate's score, expected
value and probability, as `decisions/record.py` writes them in a decision's row."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from services.campaign_engine.decisions.candidates import Candidate
from services.campaign_engine.decisions.policy import Choice


def logged_features(choice: Choice | None) -> str | None:
    """`{"candidates": [[...N_FEATURES], ...], "chosen": i | null}`: the matrix the policy scored.

    Written for every decision that got as far as scoring (holdout and no-coupon included), so
    training rows are the features exactly as they were at decision time: float32 values in
    their shortest form, which read back as the very same float32 (about 2 µs with orjson).
    """
    if choice is None or choice.matrix is None:
        return None
    return logged_matrix(choice.matrix, choice.index)


def logged_matrix(matrix: np.ndarray, chosen: int | None) -> str:
    """The `features` JSON of a scored matrix and the chosen row (None: no coupon)."""
    body = {"candidates": np.ascontiguousarray(matrix, dtype=np.float32), "chosen": chosen}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def logged_candidates(
    choice: Choice | None, scored: list[Candidate]
) -> list[dict[str, Any]] | None:
    """Each scored candidate's campaign, offer, P(redeem), expected value (yen) and probability."""
    if choice is None or not choice.scores or len(choice.scores) != len(scored):
        return None
    # Rounded in Python: numpy's conversion of a few floats cost more than the rounding.
    return [
        {
            "campaign_id": c.campaign.campaign_id,
            "offer_id": c.offer["offer_id"],
            "score": round(float(score), 6),
            "ev": round(float(ev), 3),
            "p": round(float(pr), 6),
        }
        # probabilities has one more (no coupon): zip stops at the candidates
        for c, score, ev, pr in zip(
            scored, choice.scores, choice.values, choice.probabilities, strict=False
        )
    ]
