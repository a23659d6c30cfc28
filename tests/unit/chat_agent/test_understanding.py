"""Hybrid understanding: accuracy on the frozen labelled set, data hygiene, rules, sentiment.

The labelled utterances are split (tests/data/intents/README.md): rules and exemplars
may be written from ``tuning/``; ``frozen/`` only measures, is pinned by checksum here,
holds no near-copy of an exemplar or tuning line, and no rule fragment may be backed by
it alone.

Figures on the frozen set when these thresholds were set (python bench/intent_accuracy.py):

                 hybrid accuracy  hybrid macro-F1  model alone accuracy  model alone macro-F1
    ja (n=186)        0.941            0.936              0.914                 0.905
    en (n=183)        0.951            0.940              0.934                 0.922
    id (n=176)        0.926            0.914              0.915                 0.897

The thresholds sit about two points (three or four utterances) below, so that numeric
noise across machines does not flake. Before the split, the figures on all 220
utterances per language, partly in-sample, read: hybrid ja 0.973, en 0.986, id 0.973;
model alone ja 0.905, en 0.923, id 0.932.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from services.chat_agent.persona import Persona
from services.chat_agent.understanding import (
    INTENTS,
    Interpretation,
    Understanding,
    detect_language,
    load_exemplars,
)
from services.chat_agent.understanding.classifier import SoftmaxClassifier
from services.chat_agent.understanding.core import DEFAULT_EXEMPLARS
from services.chat_agent.understanding.evaluation import (
    accuracy,
    fragments,
    load_set,
    macro_f1,
    unsupported_fragments,
)
from services.chat_agent.understanding.near_copies import find_near_copies, loose, similarity

DATA = Path(__file__).resolve().parents[2] / "data" / "intents"
FROZEN, TUNING = DATA / "frozen", DATA / "tuning"
LANGUAGES = ("ja", "en", "id")
PERSONA_FILE = DEFAULT_EXEMPLARS.parent / "tenin.yaml"

HYBRID_ACCURACY = {"ja": 0.92, "en": 0.93, "id": 0.90}
HYBRID_MACRO_F1 = {"ja": 0.91, "en": 0.92, "id": 0.89}
MODEL_ALONE_ACCURACY = {"ja": 0.89, "en": 0.91, "id": 0.89}
MIN_RULE_HITS, MIN_EMBEDDING_HITS = 300, 170  # of 545 frozen lines: 338 and 205

# Changing a frozen file needs a dated note in tests/data/intents/README.md saying why,
# then the new checksum here (sha256sum of the file, LF line endings): the diff of
# both shows up in review.
FROZEN_SHA256 = {
    "en": "78a3881dc493c9d347e17238b76bd48fed8f1c3076452036b47a73deeb39d92f",
    "id": "85bf4267f9829972de35cd5070b6252a08b24deb8761f0b2ed66db3cfac8ba2c",
    "ja": "f17fe77d32c43cd4a71f336458b5d84d0558fdef1713edfd7b3eaad01696bf81",
}

# The one-word commands the persona's help text teaches (persona/tenin.yaml, "help").
COMMANDS = (
    ("クーポン", "wants_deals"),
    ("連携", "link_membership"),
    ("配信停止", "opt_out"),
    ("配信再開", "opt_in"),
    ("coupon", "wants_deals"),
    ("link", "link_membership"),
    ("stop", "opt_out"),
    ("start", "opt_in"),
    ("kupon", "wants_deals"),
    ("berhenti", "opt_out"),
    ("mulai", "opt_in"),
)


def _frozen(language: str) -> list[dict[str, str]]:
    return load_set(FROZEN / f"{language}.jsonl")


def _tuning(language: str) -> list[dict[str, str]]:
    return load_set(TUNING / f"{language}.jsonl")


def _exemplars() -> list[tuple[str, str]]:
    """(text, intent) of every exemplar, all languages."""
    intents = load_exemplars(DEFAULT_EXEMPLARS)["intents"]
    return [
        (t, intent) for intent, by_lang in intents.items() for ts in by_lang.values() for t in ts
    ]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@pytest.fixture(scope="module")
def understanding() -> Understanding:
    """One model load and exemplar fit for the whole module (about 5 s)."""
    return Understanding.load()


@pytest.fixture(scope="module")
def predictions(understanding: Understanding) -> dict[str, tuple[list[str], list[Interpretation]]]:
    """Gold labels and hybrid interpretations of the frozen set, per language."""
    out = {}
    for language in LANGUAGES:
        rows = _frozen(language)
        results = understanding.understand_many([r["text"] for r in rows])
        out[language] = ([r["intent"] for r in rows], results)
    return out


# --- the labelled sets -------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_frozen_set_is_pinned(language: str) -> None:
    content = (FROZEN / f"{language}.jsonl").read_bytes().replace(b"\r\n", b"\n")
    digest = hashlib.sha256(content).hexdigest()
    assert digest == FROZEN_SHA256[language], (
        f"frozen/{language}.jsonl changed: note why in tests/data/intents/README.md, "
        "then pin the new checksum"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_frozen_set_is_large_and_covers_every_intent(language: str) -> None:
    rows = _frozen(language)
    counts = Counter(r["intent"] for r in rows)
    assert len(rows) >= 150
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 10
    assert len({r["text"] for r in rows}) == len(rows), "duplicate test utterances"


@pytest.mark.parametrize("language", LANGUAGES)
def test_tuning_rows_are_labelled_and_say_where_they_come_from(language: str) -> None:
    for row in _tuning(language):
        assert row["intent"] in INTENTS and row["text"].strip() and row["why"].strip(), row


def test_frozen_set_has_no_near_copy_in_the_exemplars_or_the_tuning_set() -> None:
    sources = _exemplars() + [(r["text"], r["intent"]) for lang in LANGUAGES for r in _tuning(lang)]
    frozen = [(r["text"], r["intent"]) for lang in LANGUAGES for r in _frozen(lang)]
    assert find_near_copies(frozen, sources) == []


def test_no_rule_fragment_is_backed_by_the_frozen_set_alone(persona: Persona) -> None:
    """Every fragment of a rule that matches a frozen line also matches a line it may be
    written from: an exemplar, a tuning line, a documented command or a quick reply
    (product names may also come from the persona's own replies, the shop's catalogue)."""
    support = [text for text, _ in _exemplars()]
    support += [r["text"] for lang in LANGUAGES for r in _tuning(lang)]
    support += [command for command, _ in COMMANDS]
    support += [
        item["action"]["displayText"] for lang in LANGUAGES for item in persona.quick_replies(lang)
    ]
    catalog = list(_strings(yaml.safe_load(PERSONA_FILE.read_text(encoding="utf-8"))))
    frozen = [r["text"] for lang in LANGUAGES for r in _frozen(lang)]
    assert unsupported_fragments(frozen, support, catalog=catalog) == []


# --- the near-copy check and the rule audit themselves ------------------------------


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("makasih kak", "Makasih!!", "equal"),  # address word, case, punctuation
        ("ヤッホー👋", "やっほー", "equal"),  # script, emoji
        ("heyyy", "hey", "equal"),  # repeated letters
        ("my member number is M00042", "my member number is M1234", "equal"),  # digits
        ("ありがとー", "ありがとう", "equal"),  # long vowel
        ("ありがとね", "ありがとう", "one edit"),
        ("makasi", "makasih", "one edit"),
        ("ありがとうテンちゃん", "ありがとうね、テンちゃん", "one edit"),
        ("berhenti langganan", "berhenti berlangganan", "ratio 0.91"),
        ("thanks for your help", "many thanks for your help", "jaccard 0.80"),
        ("ngobrol yuk", "yuk ngobrol", "jaccard 1.00"),
    ],
)
def test_near_copies_are_caught(a: str, b: str, reason: str) -> None:
    assert similarity(a, b) == reason
    assert [c.reason for c in find_near_copies([(a, "x")], [(b, "x")])] == [reason]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("what pastries do you have", "what cakes do you have"),  # one frame, other request
        ("ありがとうございます", "ありがとうございました"),
        ("配信停止", "送信停止"),  # one kanji of four is a different word
        ("hai", "hei"),  # too short for one edit to be a copy
        ("do you have decaf", "do you have tea"),
    ],
)
def test_different_sentences_are_not_near_copies(a: str, b: str) -> None:
    assert similarity(a, b) is None


def test_close_texts_with_different_labels_are_contrast_pairs_unless_equal() -> None:
    assert (
        find_near_copies([("matikan notifikasi", "opt_out")], [("aktifkan notifikasi", "opt_in")])
        == []
    )
    conflict = find_near_copies([("Stop!", "opt_out")], [("stop", "opt_in")])
    assert [c.reason for c in conflict] == ["equal"]
    assert loose("") == loose("🙏") == ""


def test_rule_patterns_split_into_fragments() -> None:
    assert fragments(r"^(stop|unsub)[.! ]*$|\bopt[- ]?out\b") == [
        "^stop[.! ]*$",
        "^unsub[.! ]*$",
        "\\bopt[- ]?out\\b",
    ]
    assert fragments(r"パン(?!ダ|ツ)|(a|b)?c") == ["パン(?!ダ|ツ)", "(a|b)?c"]


def test_the_rule_audit_flags_a_fragment_seen_only_in_the_checked_texts() -> None:
    found = unsupported_fragments(["howdy partner"], ["hello there"])
    assert [(u.pattern, u.fragment) for u in found] == [("greeting", r"^howdy\b")]
    assert unsupported_fragments(["howdy partner"], ["howdy!"]) == []


# --- accuracy on the frozen set -----------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_hybrid_accuracy_per_language(predictions: dict, language: str) -> None:
    gold, results = predictions[language]
    predicted = [r.intent for r in results]
    score = accuracy(gold, predicted)
    assert score >= HYBRID_ACCURACY[language], f"{language} accuracy {score:.3f}"
    assert macro_f1(gold, predicted) >= HYBRID_MACRO_F1[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_embedding_model_alone_generalises(understanding: Understanding, language: str) -> None:
    rows = _frozen(language)
    results = understanding.understand_many([r["text"] for r in rows], use_rules=False)
    score = accuracy([r["intent"] for r in rows], [i.intent for i in results])
    assert score >= MODEL_ALONE_ACCURACY[language], f"{language} model-alone accuracy {score:.3f}"
    assert {i.via for i in results} <= {"embedding", "fallback"}


def test_both_layers_do_real_work(predictions: dict) -> None:
    via = Counter(i.via for _, results in predictions.values() for i in results)
    assert via["rule"] > MIN_RULE_HITS and via["embedding"] > MIN_EMBEDDING_HITS, via


# --- the rule layer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent", "member_id"),
    [
        ("配信停止", "opt_out", None),
        ("ＳＴＯＰ", "opt_out", None),  # full-width, as some phone keyboards send it
        ("unsubscribe", "opt_out", None),
        ("berhenti", "opt_out", None),
        ("jangan kirim promo lagi ya", "opt_out", None),
        ("start", "opt_in", None),
        ("配信再開", "opt_in", None),
        ("mulai lagi", "opt_in", None),
        ("会員番号はＭ０１２３４です", "link_membership", "M01234"),
        ("my member id is m987654", "link_membership", "M987654"),
        ("link", "link_membership", None),
        ("クーポンある？", "wants_deals", None),
        ("any deals?", "wants_deals", None),
        ("ada kupon?", "wants_deals", None),
        ("hi! any coupons?", "wants_deals", None),  # deals outrank the greeting
        ("クーポンの使い方は？", "help", None),  # how-to outranks the coupon keyword
        ("ヘルプ", "help", None),
        ("メロンパンある？", "product_question", None),
        ("do you sell iced coffee?", "product_question", None),
        ("ありがとう！", "thanks", None),
        ("makasih kak", "thanks", None),
        ("こんばんは", "greeting", None),
        ("selamat pagi", "greeting", None),
    ],
)
def test_rule_layer(
    understanding: Understanding, text: str, intent: str, member_id: str | None
) -> None:
    result = understanding.understand(text)
    assert (result.intent, result.via, result.member_id) == (intent, "rule", member_id)
    assert result.confidence == 1.0


@pytest.mark.parametrize(
    "text",
    ["the coupon didn't work at the register", "クーポンが使えなかった", "kuponnya ditolak kasir"],
)
def test_a_coupon_complaint_is_not_a_request_for_deals(
    understanding: Understanding, text: str
) -> None:
    result = understanding.understand(text)
    assert result.intent == "complaint"
    assert result.via == "embedding"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("ツナマヨおにぎりある？", "onigiri"),
        ("唐揚げ弁当いくら？", "bento"),  # bento, not the fried-chicken snack
        ("iced coffee please", "coffee"),
        ("ada roti tawar?", "bakery"),
        ("any pudding?", "sweets"),
        ("keripik kentang ada?", "snacks"),
        ("お茶ください", "drinks"),
        ("🍙", "onigiri"),
        ("パンダかわいい", None),  # "panda" is not bread
        ("hello", None),
    ],
)
def test_category_extraction(understanding: Understanding, text: str, category: str | None) -> None:
    assert understanding.understand(text).category == category


# --- sentiment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["最高！ありがとう", "this onigiri is delicious, love it", "enak banget, mantap", "😊👍"],
)
def test_positive_sentiment(understanding: Understanding, text: str) -> None:
    assert understanding.understand(text).sentiment >= 0.3


@pytest.mark.parametrize(
    "text",
    [
        "今日は仕事で疲れた、最悪",
        "このパン美味しくない",  # negated praise
        "the sandwich was not good",
        "kopinya ga enak, kecewa",
        "😡",
    ],
)
def test_negative_sentiment(understanding: Understanding, text: str) -> None:
    assert understanding.understand(text).sentiment <= -0.25


@pytest.mark.parametrize("text", ["おにぎりある？", "what time do you open", "ada kopi?"])
def test_plain_questions_are_near_neutral(understanding: Understanding, text: str) -> None:
    assert -0.25 < understanding.understand(text).sentiment < 0.3


def test_labelled_complaints_and_thanks_have_opposite_sentiment(predictions: dict) -> None:
    for gold, results in predictions.values():
        moods = {
            intent: np.mean(
                [r.sentiment for g, r in zip(gold, results, strict=True) if g == intent]
            )
            for intent in ("complaint", "thanks")
        }
        assert moods["complaint"] <= -0.3 and moods["thanks"] >= 0.3


# --- language ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("おにぎりある？", "ja"),
        ("ｶﾌｪﾗﾃ", "ja"),  # half-width katakana
        ("do you have coffee", "en"),
        ("ada kopi ga kak?", "id"),
        ("rotinya enak banget", "id"),
        ("thanks kak", "id"),
        ("M12345", None),
        ("🍙🍙", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text.lower()) == language


def test_language_hint_fills_in_when_the_text_has_no_signal(understanding: Understanding) -> None:
    assert understanding.understand("M12345", language_hint="id").language == "id"
    assert understanding.understand("M12345").language == "en"
    assert understanding.understand("🍙").language == "ja"  # the default language
    assert understanding.understand("ada kopi?", language_hint="ja").language == "id"


# --- robustness --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t",
        "😀😀😀",
        "🙏",
        "？？？",
        "…",
        "\x00\x07",
        "a" * 20_000,
        "おにぎり" * 5_000,
    ],
)
def test_never_crashes(understanding: Understanding, text: str) -> None:
    result = understanding.understand(text)
    assert result.intent in INTENTS
    assert -1.0 <= result.sentiment <= 1.0
    assert 0.0 <= result.confidence <= 1.0
    assert result.language in LANGUAGES


def test_empty_and_emoji_only_fall_back_to_small_talk(understanding: Understanding) -> None:
    for text in ("", "😀😀"):
        result = understanding.understand(text)
        assert (result.intent, result.via, result.confidence) == ("small_talk", "fallback", 0.0)


def test_results_are_deterministic(understanding: Understanding) -> None:
    texts = ["今日のおすすめは？", "is the latte good", "bosen nih"]
    assert understanding.understand_many(texts) == understanding.understand_many(texts)


# --- routing policy on the model's probabilities (fake encoder, fixed classifier) --


class _ZeroEncoder:
    def encode(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 4), dtype=np.float32)


def _fixed(probabilities: dict[str, float]) -> Understanding:
    """An Understanding whose model always returns these probabilities."""
    labels = sorted(INTENTS)
    rest = (1.0 - sum(probabilities.values())) / (len(labels) - len(probabilities))
    bias = np.log([probabilities.get(label, rest) for label in labels]).astype(np.float32)
    classifier = SoftmaxClassifier(labels, np.zeros((4, len(labels)), np.float32), bias)
    anchor = np.zeros(4, dtype=np.float32)
    return Understanding(_ZeroEncoder(), classifier, anchor, anchor)


def test_low_confidence_falls_back_to_small_talk() -> None:
    result = _fixed({"greeting": 0.3}).understand("zzz qqq")
    assert (result.intent, result.via) == ("small_talk", "fallback")


def test_product_question_wins_a_close_call_with_small_talk() -> None:
    result = _fixed({"small_talk": 0.45, "product_question": 0.35}).understand("zzz qqq")
    assert (result.intent, result.via) == ("product_question", "embedding")


def test_an_unsure_opt_out_shows_help_instead_of_unsubscribing() -> None:
    result = _fixed({"opt_out": 0.5}).understand("zzz qqq")
    assert (result.intent, result.via) == ("help", "fallback")
    assert _fixed({"opt_out": 0.8}).understand("zzz qqq").intent == "opt_out"


# --- exemplar file validation and the persona's own instructions -------------------


def test_exemplars_missing_a_language_are_rejected(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_EXEMPLARS.read_text(encoding="utf-8"))
    del data["intents"]["help"]["id"]
    broken = tmp_path / "exemplars.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"intents\.help\.id"):
        Understanding.load(broken)


@pytest.mark.parametrize("language", LANGUAGES)
def test_quick_reply_texts_mean_what_their_buttons_do(
    understanding: Understanding, persona: Persona, language: str
) -> None:
    expected = {
        "deals": "wants_deals",
        "help": "help",
        "stop": "opt_out",
        "link": "link_membership",
    }
    for item in persona.quick_replies(language):
        action = item["action"]["data"].removeprefix("action=")
        result = understanding.understand(item["action"]["displayText"])
        assert result.intent == expected[action], item


@pytest.mark.parametrize(("command", "intent"), COMMANDS)
def test_commands_the_help_text_teaches_work(
    understanding: Understanding, command: str, intent: str
) -> None:
    assert understanding.understand(command).intent == intent
