"""Sentiment in [-1, 1]: a small lexicon per language, blended with embedding anchors."""

from __future__ import annotations

import math
import re

import numpy as np


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# Negated positives first: their spans are blanked out before the plain lists run,
# so "美味しくない" / "ga enak" / "not good" never count as praise.
_NEGATED_POSITIVE = _words(
    r"(おいし|美味し|うれし|嬉し|楽し|よ|良|優し|やさし)くな",
    r"好きじゃな|満足できな",
    r"\b(not|never|isn'?t|wasn'?t|aren'?t|weren'?t|don'?t|didn'?t|doesn'?t|no longer) "
    r"(very |so |that |really )?(good|great|nice|tasty|delicious|happy|fresh|friendly|helpful|working|work)\b",
    r"\b(tidak|ga|gak|nggak|enggak|ngga|kurang|bukan) (enak|bagus|suka|ramah|puas|senang|bisa|segar|fresh)\b",
)
_NEGATED_NEGATIVE = _words(
    r"\bnot (bad|terrible|too bad)\b|悪くな|まずくな|\b(tidak|ga|gak|nggak) (jelek|buruk|parah)\b",
)
_POSITIVE = _words(
    r"最高|うれし|嬉し|楽し|美味し|おいし|うまい|旨い|好き|ありがと|助か|感謝|いいね|素敵|すてき",
    r"かわいい|可愛い|やった|すごい|幸せ|満足|便利|ナイス|よかった|良かった|わーい|いい天気",
    r"サンキュ|さんきゅ|あざー?す|ありがた|お礼|うまかった",
    r"\b(love|loved|great|awesome|amazing|good|nice|delicious|yummy|tasty|happy|thanks?|thank you)\b",
    r"\b(appreciate\w*|perfect|wonderful|best|cool|excellent|fantastic|glad|yay|cute|fun|lol|haha\w*)\b",
    r"\b(thx|ty|tysm|cheers|trims|tengkyu|thank u|hatur nuhun)\b",
    r"\b(enak|mantap|mantul|keren|bagus|suka|senang|seneng|makasih?|terima ?kasih|lucu|asik|asyik)\b",
    r"\b(hebat|sip|puas|cantik|wkwk\w*|syukur|bahagia|seru|ramah)\b",
    r"[😀😃🙂😊😄😁😍🥰❤💕👍🎉✨☺😆🤣😂💖😋🙌]",
)
_NEGATIVE = _words(
    r"最悪|ひどい|酷い|まずい|不味い|がっかり|残念|悲しい|嫌い|むかつく|ムカつく|腹が立|うざ|イライラ",
    r"怒|不満|不親切|汚い|遅い|困る|困って|困った|疲れ|眠い|だるい|つらい|最低|許せな|ありえな|カビ|かび|腐",
    r"使えな|待たされ|ぬるい|壊れ|間違|返金|態度が悪|感じ悪|不愉快|わからな|分からな|わかんな",
    r"\b(hate|terrible|awful|worst|bad|disgusting|gross|disappoint\w*|angry|annoy\w*|rude|dirty)\b",
    r"\b(slow|broken|wrong|sad|tired|sleepy|bored|sick|upset|mad|sucks?|horrible|unacceptable)\b",
    r"\b(refund|expired|mold\w*|sour|spoiled|crash\w*|ignored|complain\w*|filthy|stale|confused)\b",
    r"\b(kecewa|buruk|jelek|parah|kesel|kesal|marah|benci|sedih|basi|kotor|jorok|lambat|jutek)\b",
    r"\b(cuek|kasar|rusak|error|berjamur|kedaluwarsa|capek|ngantuk|bosen|bosan|ganggu|mengganggu)\b",
    r"\b(males|malas|sebel|terburuk|nyebelin|ditolak|bingung)\b",
    r"[😡😠😢😭😞😔💢👎😤😩😫🤮😒]",
)

# Embedding anchors only shift the score a little: similarity differences between
# the positive and negative anchor centroids sit in about ±0.25, and product
# questions lean slightly positive, hence the offset.
_EMBEDDING_OFFSET = 0.02
_EMBEDDING_GAIN = 4.0
_LEXICON_WEIGHT = 0.65


def lexicon_score(text: str) -> float | None:
    """Lexicon polarity of normalised text in [-1, 1], or None when no word is known."""
    negative = len(_NEGATED_POSITIVE.findall(text))
    text = _NEGATED_POSITIVE.sub(" ", text)
    positive = 0.5 * len(_NEGATED_NEGATIVE.findall(text))
    text = _NEGATED_NEGATIVE.sub(" ", text)
    positive += len(_POSITIVE.findall(text))
    negative += len(_NEGATIVE.findall(text))
    if positive == negative == 0:
        return None
    return math.tanh(0.8 * (positive - negative))


def embedding_score(embedding: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """Scaled difference of cosine similarity to the positive and negative anchors."""
    raw = float(embedding @ positive - embedding @ negative) - _EMBEDDING_OFFSET
    return max(-1.0, min(1.0, raw * _EMBEDDING_GAIN))


def blend(lexicon: float | None, embedding: float | None) -> float:
    """Combine both signals; the lexicon dominates when it found anything."""
    if lexicon is None:
        return 0.0 if embedding is None else round(0.75 * embedding, 3)
    if embedding is None:
        return round(lexicon, 3)
    return round(_LEXICON_WEIGHT * lexicon + (1 - _LEXICON_WEIGHT) * embedding, 3)
