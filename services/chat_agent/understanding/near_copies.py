"""Near-copy detection between labelled utterance sets (test data hygiene, not runtime).

A test utterance that is a near-copy of a training exemplar, or of a line the rules
were written from, measures memory instead of generalisation. ``find_near_copies``
flags such pairs after a loose normalisation (``loose``):

* NFKC, case-fold, katakana to hiragana, small kana to full size, long vowels folded
  (ー 〜 ~ dropped, "おう" read as "お": "ありがとー" = "ありがとう"), runs of one
  repeated character collapsed ("heyyy" = "hey"), digit runs made one ("M00042" =
  "M1234"), the Indonesian suffix -nya dropped ("kopinya" = "kopi");
* punctuation, spaces, symbols and emoji dropped;
* forms of address and fillers dropped ("kak", "ya", "dong", "please", "Ten-chan"):
  "makasih kak" says what "makasih" says.

Two texts are then a near-copy when

* their loose forms are equal, whatever their labels (equal text under two labels is
  a labelling conflict), or, for texts with the same label,
* their loose forms are one edit apart and the longer has 5+ characters
  ("ありがとね" / "ありがとう", "配信停止" / "配信停止で", "makasi" / "makasih"); four
  characters are too few: "配信停止" / "送信停止" are different words, or
* their character similarity (``difflib`` ratio of the loose forms) is 0.9 or more,
  which on 10+ characters allows about one change in ten ("berhenti langganan" /
  "berhenti berlangganan" 0.91); at 0.85 it would already pair different requests
  built on one frame ("what's your favorite food" / "... color" 0.86), or
* their word sets overlap with Jaccard 0.8 or more (space-separated languages): it
  catches reordering ("ngobrol yuk" / "yuk ngobrol") and one added word once there
  are five ("thanks for your help" / "many thanks for your help"), not on shorter
  texts ("do you have decaf" / "do you have tea" is 0.6).

Texts with different labels that are merely close ("matikan notifikasi" /
"aktifkan notifikasi") are contrast pairs, not copies: they make a test harder, not
easier, so they are not flagged.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RATIO_THRESHOLD = 0.9
JACCARD_THRESHOLD = 0.8
MIN_CHARS_FOR_ONE_EDIT = 5

_LONG_VOWEL = str.maketrans("", "", "ー〜~")
_SMALL_KANA = str.maketrans("ぁぃぅぇぉっゃゅょゎゕゖ", "あいうえおつやゆよわかけ")
_REPEATS = re.compile(r"(.)\1+")
# "おう" spells a long o ("ありがとう" is said "ありがとー"), so it folds to "お".
_LONG_O = re.compile(r"([おこそとのほもよろごぞどぼぽ])う")
_DIGITS = re.compile(r"\d+")
_NYA = re.compile(r"(?<=\w{3})nya$")  # Indonesian definite suffix: "kopinya" = "kopi"
_SEPARATORS = re.compile(r"[\W_]+")
# Forms of address and fillers that carry no intent.
_FILLERS = frozenset(
    ["kak", "kakak", "ya", "dong", "deh", "sih", "nih", "loh", "please", "pls", "plz"]
)
_NAME = re.compile(r"ten-?chan|てんちやん")  # the clerk's name, after folding


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    hiragana = "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in folded)
    kana = _LONG_O.sub(r"\1", hiragana.translate(_SMALL_KANA).translate(_LONG_VOWEL))
    return _DIGITS.sub("0", _NAME.sub(" ", kana))


def words(text: str) -> list[str]:
    """Folded words without punctuation, emoji or fillers, repeated letters collapsed."""
    out = []
    for word in _SEPARATORS.split(_fold(text)):
        word = _NYA.sub("", _REPEATS.sub(r"\1", word))
        if word and word not in _FILLERS:
            out.append(word)
    return out


def loose(text: str) -> str:
    """The comparison form: folded words run together (Japanese has no spaces anyway)."""
    return "".join(words(text))


@dataclass(frozen=True)
class NearCopy:
    """One flagged pair: a ``text`` from the checked set and its ``source`` twin."""

    text: str
    intent: str
    source: str
    source_intent: str
    reason: str  # "equal" | "one edit" | "ratio 0.93" | "jaccard 0.80"


def _one_edit_apart(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1 or max(len(a), len(b)) < MIN_CHARS_FOR_ONE_EDIT:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    # Skip the one differing character: a substitution when equal lengths, else an insertion.
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


def similarity(a: str, b: str) -> str | None:
    """Why two same-label texts count as near-copies, or None when they do not."""
    la, lb = loose(a), loose(b)
    if la == lb:
        return "equal"
    if _one_edit_apart(la, lb):
        return "one edit"
    ratio = difflib.SequenceMatcher(None, la, lb, autojunk=False).ratio()
    if ratio >= RATIO_THRESHOLD:
        return f"ratio {ratio:.2f}"
    wa, wb = set(words(a)), set(words(b))
    if len(wa) > 1 and len(wb) > 1:  # one-word texts are covered by the tests above
        jaccard = len(wa & wb) / len(wa | wb)
        if jaccard >= JACCARD_THRESHOLD:
            return f"jaccard {jaccard:.2f}"
    return None


def find_near_copies(
    checked: Iterable[tuple[str, str]], sources: Sequence[tuple[str, str]]
) -> list[NearCopy]:
    """Every (text, intent) in ``checked`` with a near-copy among ``sources``.

    Equal loose forms are flagged whatever the labels; the looser tests only between
    texts of the same intent. One pair per checked text and source is reported.
    """
    prepared = [(text, intent, loose(text)) for text, intent in sources]
    by_form: dict[str, list[tuple[str, str]]] = {}
    for text, intent, form in prepared:
        by_form.setdefault(form, []).append((text, intent))
    found = []
    for text, intent in checked:
        form = loose(text)
        for source, source_intent in by_form.get(form, []):
            found.append(NearCopy(text, intent, source, source_intent, "equal"))
        for source, source_intent, source_form in prepared:
            if source_intent != intent or source_form == form:
                continue
            reason = similarity(text, source)
            if reason:
                found.append(NearCopy(text, intent, source, source_intent, reason))
    return found
