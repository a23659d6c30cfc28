"""The clerk's voice: load the persona pack (YAML) and render its lines."""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.events import LANGUAGES

DEFAULT_PACK = Path(__file__).resolve().parent / "tenin.yaml"

TONES = ("cheerful", "neutral", "gentle")
PRODUCT_CATEGORIES = ("onigiri", "bento", "drinks", "coffee", "sweets", "bakery", "snacks")
KINDS = (
    "greeting",
    "greeting_again",
    "small_talk",
    *(f"product_{category}" for category in PRODUCT_CATEGORIES),
    "product_general",
    "offer_pitch",
    "no_coupon_today",
    "budget_exhausted",
    "thanks_after_redemption",
    "opted_out",
    "opted_in",
    "already_opted_out",
    "link_prompt",
    "link_by_number",
    "link_unavailable",
    "link_failed",
    "linked",
    "help",
    "complaint",
    "thanks_reply",
    "unsupported_message",
)
# Placeholders every line of a kind must use, so no variant silently drops the code.
REQUIRED_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "offer_pitch": frozenset({"title", "expires", "code"}),
    "thanks_after_redemption": frozenset({"title"}),
    "link_prompt": frozenset({"url"}),
}
QUICK_REPLY_ACTIONS = ("deals", "help", "stop", "link")
# LINE rejects quick-reply labels over 20 characters and displayText over 300.
_MAX_LABEL, _MAX_DISPLAY_TEXT = 20, 300

# Sentiment cut-offs for the tone: a customer has to sound clearly upset before the
# clerk turns gentle, and clearly pleased before it turns bubbly.
GENTLE_BELOW = -0.25
CHEERFUL_FROM = 0.3


class PersonaError(ValueError):
    """The persona pack is malformed, or a line was asked for with bad arguments."""


def tone_for(sentiment: float) -> str:
    """The tone that answers a customer's sentiment in [-1, 1]."""
    if sentiment <= GENTLE_BELOW:
        return "gentle"
    if sentiment >= CHEERFUL_FROM:
        return "cheerful"
    return "neutral"


def product_kind(category: str | None) -> str:
    """The message kind answering a product question about ``category`` (or none)."""
    return f"product_{category}" if category in PRODUCT_CATEGORIES else "product_general"


@dataclass(frozen=True)
class Persona:
    """A validated persona pack; build it with `Persona.load`."""

    names: Mapping[str, str]
    character: str
    messages: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]]
    buttons: Mapping[str, Mapping[str, Mapping[str, str]]]

    @classmethod
    def load(cls, path: str | Path | None = None) -> Persona:
        """Read and validate a pack; raises PersonaError naming the first problem."""
        source = Path(path) if path else DEFAULT_PACK
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PersonaError(f"persona pack {source}: cannot read: {exc}") from exc
        return cls.from_dict(data, source=str(source))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Persona:
        """Validate an already-parsed pack."""
        check = _Checker(source)
        check.mapping(data, "")
        names = check.texts(data.get("name"), "name", LANGUAGES)
        character = data.get("character")
        check.that(isinstance(character, str) and character.strip(), "character", "is missing")
        messages = check.mapping(data.get("messages"), "messages")
        parsed = {kind: check.kind(messages.get(kind), kind) for kind in KINDS}
        replies = check.mapping(data.get("quick_replies"), "quick_replies")
        buttons: dict[str, dict[str, dict[str, str]]] = {
            lang: check.buttons(replies.get(lang), lang) for lang in LANGUAGES
        }
        return cls(names, character.strip(), parsed, buttons)

    def name(self, language: str) -> str:
        """The clerk's name as written in ``language``."""
        return self.names[self._language(language)]

    def line(
        self,
        kind: str,
        language: str,
        tone: str = "neutral",
        rng_or_seed: random.Random | int | str | None = None,
        **placeholders: object,
    ) -> str:
        """One rendered line of ``kind``; the same seed always picks the same variant.

        ``rng_or_seed`` may be a Random, or an int/str seed such as the webhook event
        id, so a redelivered event gets the same words; None picks the first variant.
        """
        if kind not in self.messages:
            raise PersonaError(f"unknown message kind {kind!r}")
        if tone not in TONES:
            raise PersonaError(f"unknown tone {tone!r}; expected one of {TONES}")
        language = self._language(language)
        variants = self.messages[kind][language][tone]
        if rng_or_seed is None:
            template = variants[0]
        else:
            rng = (
                rng_or_seed
                if isinstance(rng_or_seed, random.Random)
                else random.Random(rng_or_seed)
            )
            template = rng.choice(variants)
        values = {"name": self.names[language], **placeholders}
        try:
            return template.format_map(values)
        except KeyError as exc:
            raise PersonaError(f"{kind}: placeholder {exc.args[0]!r} was not given") from exc

    def quick_replies(self, language: str) -> list[dict[str, Any]]:
        """LINE quick-reply items (postback actions) for deals, help, stop and link."""
        buttons = self.buttons[self._language(language)]
        return [
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": buttons[action]["label"],
                    "data": f"action={action}",
                    "displayText": buttons[action]["text"],
                },
            }
            for action in QUICK_REPLY_ACTIONS
        ]

    def _language(self, language: str) -> str:
        if language not in self.names:
            raise PersonaError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
        return language


class _Checker:
    """Validation helpers that name the exact key path that is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def that(self, condition: object, where: str, problem: str) -> None:
        if not condition:
            raise PersonaError(f"persona pack {self.source}: {where or 'top level'} {problem}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        self.that(value is not None, where, "is missing")
        self.that(isinstance(value, dict), where, "must be a mapping")
        return value

    def texts(self, value: Any, where: str, keys: tuple[str, ...]) -> dict[str, str]:
        value = self.mapping(value, where)
        for key in keys:
            text = value.get(key)
            self.that(isinstance(text, str) and text.strip(), f"{where}.{key}", "is missing")
        return {key: value[key].strip() for key in keys}

    def kind(self, value: Any, kind: str) -> dict[str, dict[str, tuple[str, ...]]]:
        by_language = self.mapping(value, f"messages.{kind}")
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        for language in LANGUAGES:
            by_tone = self.mapping(by_language.get(language), f"messages.{kind}.{language}")
            out[language] = {}
            for tone in TONES:
                where = f"messages.{kind}.{language}.{tone}"
                lines = by_tone.get(tone) or []
                self.that(lines, where, "is missing or empty")
                self.that(isinstance(lines, list), where, "must be a list of lines")
                for i, text in enumerate(lines):
                    self.template(text, kind, f"{where}[{i}]")
                out[language][tone] = tuple(lines)
        return out

    def template(self, text: Any, kind: str, where: str) -> None:
        self.that(isinstance(text, str) and text.strip(), where, "must be a non-empty string")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise PersonaError(f"persona pack {self.source}: {where} is malformed: {exc}") from exc
        required = REQUIRED_PLACEHOLDERS.get(kind, frozenset())
        allowed = required | {"name"}
        self.that(fields <= allowed, where, f"uses unknown placeholders {sorted(fields - allowed)}")
        self.that(required <= fields, where, f"lacks placeholders {sorted(required - fields)}")

    def buttons(self, value: Any, language: str) -> dict[str, dict[str, str]]:
        by_action = self.mapping(value, f"quick_replies.{language}")
        out = {}
        for action in QUICK_REPLY_ACTIONS:
            where = f"quick_replies.{language}.{action}"
            button = self.texts(by_action.get(action), where, ("label", "text"))
            self.that(len(button["label"]) <= _MAX_LABEL, f"{where}.label", "exceeds 20 characters")
            self.that(len(button["text"]) <= _MAX_DISPLAY_TEXT, f"{where}.text", "is too long")
            out[action] = button
        return out
