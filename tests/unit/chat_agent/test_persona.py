"""The persona pack: completeness, rendering, tone choice and clear load errors."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.chat_agent.persona import (
    DEFAULT_PACK,
    KINDS,
    PRODUCT_CATEGORIES,
    TONES,
    Persona,
    PersonaError,
    product_kind,
    tone_for,
)
from shared.events import LANGUAGES

OFFER = {"title": "おにぎり100円引き", "expires": "12/1 23:59", "code": "TN-ABCDE-FGHJK"}
PLACEHOLDERS = {**OFFER, "url": "https://members.example/link?linkToken=t"}


@pytest.fixture(scope="module")
def persona() -> Persona:
    return Persona.load()


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PACK.read_text(encoding="utf-8"))


def _load_broken(tmp_path: Path, data: Any) -> Persona:
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return Persona.load(path)


def test_pack_loads_with_a_name_per_language(persona: Persona) -> None:
    assert persona.name("ja") == "テンちゃん"
    assert persona.name("en") == "Ten-chan"
    assert persona.character


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language_and_tone(persona: Persona, kind: str) -> None:
    for language in LANGUAGES:
        for tone in TONES:
            for seed in range(6):  # reaches every variant of the short lists
                text = persona.line(kind, language, tone, seed, **PLACEHOLDERS)
                assert text.strip() and "{" not in text and "}" not in text


def test_small_talk_has_several_lines(persona: Persona) -> None:
    for language in LANGUAGES:
        for tone in TONES:
            assert len(persona.messages["small_talk"][language][tone]) >= 3


@pytest.mark.parametrize("language", LANGUAGES)
def test_offer_pitch_carries_title_code_and_expiry(persona: Persona, language: str) -> None:
    for tone in TONES:
        for variant in persona.messages["offer_pitch"][language][tone]:
            text = variant.format(name=persona.name(language), **OFFER)
            assert all(value in text for value in OFFER.values())


def test_thanks_after_redemption_names_the_offer(persona: Persona) -> None:
    text = persona.line("thanks_after_redemption", "en", "cheerful", 1, title="Free latte")
    assert "Free latte" in text


def test_name_placeholder_is_filled(persona: Persona) -> None:
    lines = {persona.line("greeting", "ja", "neutral", seed) for seed in range(10)}
    assert any("テンちゃん" in line for line in lines)


def test_same_seed_same_line_different_seeds_vary(persona: Persona) -> None:
    a = persona.line("small_talk", "en", "cheerful", "event-123")
    assert a == persona.line("small_talk", "en", "cheerful", "event-123")
    assert a == persona.line("small_talk", "en", "cheerful", random.Random("event-123"))
    assert len({persona.line("small_talk", "en", "cheerful", s) for s in range(20)}) > 1
    first = persona.messages["help"]["id"]["neutral"][0].format(name="Ten-chan")
    assert persona.line("help", "id", "neutral") == first


def test_missing_placeholder_value_is_a_clear_error(persona: Persona) -> None:
    with pytest.raises(PersonaError, match="'code'"):
        persona.line("offer_pitch", "en", "neutral", 0, title="x", expires="y")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nonsense", "en", "neutral"), "unknown message kind"),
        (("help", "fr", "neutral"), "unsupported language 'fr'"),
        (("help", "en", "angry"), "unknown tone 'angry'"),
    ],
)
def test_bad_arguments_are_clear_errors(persona: Persona, args: tuple, message: str) -> None:
    with pytest.raises(PersonaError, match=message):
        persona.line(*args)


@pytest.mark.parametrize(
    ("sentiment", "tone"),
    [
        (-1.0, "gentle"),
        (-0.4, "gentle"),
        (-0.1, "neutral"),
        (0.0, "neutral"),
        (0.2, "neutral"),
        (0.5, "cheerful"),
        (1.0, "cheerful"),
    ],
)
def test_tone_follows_sentiment(sentiment: float, tone: str) -> None:
    assert tone_for(sentiment) == tone


def test_product_kind_maps_categories(persona: Persona) -> None:
    for category in PRODUCT_CATEGORIES:
        assert product_kind(category) in persona.messages
    assert product_kind(None) == product_kind("fireworks") == "product_general"


@pytest.mark.parametrize("language", LANGUAGES)
def test_quick_replies_are_line_postback_actions(persona: Persona, language: str) -> None:
    items = persona.quick_replies(language)
    assert [i["action"]["data"] for i in items] == [
        "action=deals",
        "action=help",
        "action=stop",
        "action=link",
    ]
    for item in items:
        assert item["type"] == "action"
        action = item["action"]
        assert action["type"] == "postback"
        assert 0 < len(action["label"]) <= 20 and action["displayText"]


# --- a broken pack fails at start-up, naming what is wrong -------------------------


def test_missing_language_is_named(tmp_path: Path, raw: dict) -> None:
    del raw["messages"]["budget_exhausted"]["id"]
    with pytest.raises(PersonaError, match=r"messages\.budget_exhausted\.id is missing"):
        _load_broken(tmp_path, raw)


def test_missing_kind_is_named(tmp_path: Path, raw: dict) -> None:
    del raw["messages"]["link_failed"]
    with pytest.raises(PersonaError, match=r"messages\.link_failed is missing"):
        _load_broken(tmp_path, raw)


def test_missing_tone_is_named(tmp_path: Path, raw: dict) -> None:
    raw["messages"]["complaint"]["en"]["gentle"] = []
    with pytest.raises(PersonaError, match=r"messages\.complaint\.en\.gentle is missing or empty"):
        _load_broken(tmp_path, raw)


def test_offer_line_without_code_is_rejected(tmp_path: Path, raw: dict) -> None:
    raw["messages"]["offer_pitch"]["ja"]["neutral"].append(
        "「{title}」のクーポンです（{expires}まで）"
    )
    with pytest.raises(
        PersonaError, match=r"offer_pitch\.ja\.neutral\[2\] lacks placeholders \['code'\]"
    ):
        _load_broken(tmp_path, raw)


def test_unknown_placeholder_is_rejected(tmp_path: Path, raw: dict) -> None:
    raw["messages"]["help"]["en"]["neutral"] = ["Hi {customer}!"]
    with pytest.raises(PersonaError, match=r"unknown placeholders \['customer'\]"):
        _load_broken(tmp_path, raw)


def test_overlong_quick_reply_label_is_rejected(tmp_path: Path, raw: dict) -> None:
    raw["quick_replies"]["en"]["deals"]["label"] = "x" * 21
    with pytest.raises(PersonaError, match=r"quick_replies\.en\.deals\.label exceeds 20"):
        _load_broken(tmp_path, raw)


def test_missing_name_and_unreadable_file(tmp_path: Path, raw: dict) -> None:
    broken = copy.deepcopy(raw)
    del broken["name"]["en"]
    with pytest.raises(PersonaError, match=r"name\.en is missing"):
        _load_broken(tmp_path, broken)
    with pytest.raises(PersonaError, match="cannot read"):
        Persona.load(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("messages: [unclosed", encoding="utf-8")
    with pytest.raises(PersonaError, match="cannot read"):
        Persona.load(tmp_path / "bad.yaml")
