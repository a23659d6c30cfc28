"""Plain words for explanations, in Japanese and English."""

from __future__ import annotations

import pytest

from services.campaign_engine.insights.wording import (
    EXPLAINED_LANGUAGES,
    REASONS,
    Worded,
    feature_text,
    reason_text,
    summary,
)
from shared.events import NO_COUPON_REASONS
from shared.model.features import CATEGORIES, FEATURE_NAMES

BAKERY = float(CATEGORIES.index("bakery"))


@pytest.mark.parametrize("lang", EXPLAINED_LANGUAGES)
def test_every_reason_a_decision_can_carry_has_words(lang: str) -> None:
    for reason in (*NO_COUPON_REASONS, "exploit", "explore", "paced"):
        assert reason in REASONS[lang], reason  # type: ignore[index]


@pytest.mark.parametrize("lang", EXPLAINED_LANGUAGES)
def test_every_model_feature_has_a_phrase(lang: str) -> None:
    for name in FEATURE_NAMES:
        text = feature_text(name, 1.0, BAKERY, lang)  # type: ignore[arg-type]
        assert not text.startswith(f"{name} = "), text  # the fallback for a feature with no words


def test_features_are_worded_with_their_values() -> None:
    assert feature_text("category_affinity", 0.4, BAKERY, "en") == "buys bakery on 40% of visits"
    assert feature_text("category_affinity", 0.4, BAKERY, "ja") == "来店の40%でパンを購入"
    assert feature_text("weekday", 5, 0, "ja") == "土曜日"
    assert feature_text("linked", 1.0, 0, "en") == "loyalty card linked"


def test_the_summary_lists_what_raised_and_what_lowered_the_score() -> None:
    effects = [
        Worded("visits 3.0 times a week", 0.8),
        Worded("minimum basket 1.5× their usual spend", -0.3),
        Worded("buys bakery on 40% of visits", 0.4),
    ]
    assert summary(effects, "en", sent=True) == (
        "Chosen because: visits 3.0 times a week (+0.80), buys bakery on 40% of visits (+0.40). "
        "Against: minimum basket 1.5× their usual spend (-0.30)."
    )
    assert summary(effects, "ja", sent=False).startswith("評価の内訳: visits")
    assert summary([], "en", sent=True) == ""


def test_an_unrecorded_reason_says_so() -> None:
    assert "not recorded" in reason_text(None, "en")
    assert "記録されていません" in reason_text(None, "ja")
