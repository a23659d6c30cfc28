"""Hybrid multilingual understanding of customer messages (rules + sentence embeddings)."""

from .core import INTENTS, Interpretation, Understanding, load_exemplars
from .language import detect_language

__all__ = [
    "INTENTS",
    "Interpretation",
    "Understanding",
    "detect_language",
    "load_exemplars",
]
