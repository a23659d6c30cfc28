"""A deliberately bad candidate (trained on shuffled labels) is refused by the gate; a sound one passes."""

from __future__ import annotations

from services.campaign_engine.modeling import candidate
from services.campaign_engine.modeling.evaluate import BanditLog
from services.campaign_engine.modeling.gate import DEFAULT_MARGINS, judge
from tests.unit.campaign_engine.modeling_gate.conftest import SERVING, Models


def _verdict(models: Models, logged: BanditLog, version: str) -> tuple[bool, str]:
    comparison = candidate.compare_propensity(
        logged,
        candidate.load(models.model_dir, "propensity", version),
        candidate.load(models.model_dir, "propensity", models.champion["version"]),
        SERVING,
    )
    print("\n" + candidate.format_comparison(comparison))
    verdict = judge(
        comparison.dr("candidate"), comparison.dr("champion"), DEFAULT_MARGINS["propensity"]
    )
    return verdict.promote, verdict.reason


def test_the_shuffled_label_candidate_is_refused(models: Models, logged: BanditLog) -> None:
    promote, reason = _verdict(models, logged, models.shuffled["version"])
    assert not promote, reason
    assert models.shuffled["auc"] < 0.6 < models.good["auc"]  # it really learned nothing


def test_a_candidate_trained_like_the_champion_passes(models: Models, logged: BanditLog) -> None:
    promote, reason = _verdict(models, logged, models.good["version"])
    assert promote, reason
