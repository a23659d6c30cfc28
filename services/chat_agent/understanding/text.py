"""Normalisation shared by the rule, language and sentiment layers."""

from __future__ import annotations

import re
import unicodedata

# Long messages are cut before any work: intent lives in the first sentences, and the
# embedding cost grows with length.
MAX_CHARS = 400

_SPACES = re.compile(r"\s+")


def normalize(text: str, max_chars: int = MAX_CHARS) -> str:
    """NFKC-fold (full-width → ASCII), lower-case, collapse spaces and truncate."""
    folded = unicodedata.normalize("NFKC", text or "")[: max_chars * 2]
    return _SPACES.sub(" ", folded).strip().lower()[:max_chars]


def has_words(text: str) -> bool:
    """True when the text holds at least one letter or digit (not only emoji/punctuation)."""
    return any(ch.isalnum() for ch in text)
