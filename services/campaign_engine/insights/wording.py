"""Plain words for an explanation, in Japanese and English
(docs/interfaces.md § Decision explanations and forecasts).

Each model feature has one phrase per language saying what its value was; each reason a
decision can carry has one sentence. A summary lists what raised the score ("because") and
what lowered it ("against"), each with its contribution on the log-odds scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from shared.model.features import CATEGORIES, DISCOUNT_TYPES, INTENTS

Lang = Literal["ja", "en"]
EXPLAINED_LANGUAGES: tuple[Lang, ...] = ("ja", "en")

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ja": ("月", "火", "水", "木", "金", "土", "日"),
}
_CATEGORY_JA = {
    "onigiri": "おにぎり",
    "bento": "弁当",
    "drinks": "飲み物",
    "sweets": "スイーツ",
    "coffee": "コーヒー",
    "bakery": "パン",
    "snacks": "お菓子",
    "daily": "日用品",
    "other": "その他",
}
_TYPE_WORDS = {
    "en": {"amount": "a yen-off", "percent": "a percent-off", "free_item": "a free-item"},
    "ja": {"amount": "値引き", "percent": "割引率", "free_item": "無料引換"},
}


def _pick(names: Sequence[str], value: float) -> str:
    i = int(round(value))
    return names[i] if 0 <= i < len(names) else names[-1]


def category_word(code: float, lang: Lang) -> str:
    """The offer category a feature code stands for, in `lang`."""
    name = _pick(CATEGORIES, code)
    return _CATEGORY_JA[name] if lang == "ja" else name


Phrase = Callable[[float, float], str]  # (value, the row's category code) -> words

# Per feature: (English, Japanese) phrase for its value.
_PHRASES: dict[str, tuple[Phrase, Phrase]] = {
    "recency_days": (
        lambda v, c: f"last visit {v:.0f} days ago",
        lambda v, c: f"前回の来店は{v:.0f}日前",
    ),
    "frequency_per_week": (
        lambda v, c: f"visits {v:.1f} times a week",
        lambda v, c: f"週{v:.1f}回来店",
    ),
    "monetary_avg": (
        lambda v, c: f"average basket ¥{v:,.0f}",
        lambda v, c: f"平均購入額{v:,.0f}円",
    ),
    "days_since_follow": (
        lambda v, c: f"followed {v:.0f} days ago",
        lambda v, c: f"友だち追加から{v:.0f}日",
    ),
    "coupons_issued": (
        lambda v, c: f"{v:.0f} coupons received before",
        lambda v, c: f"これまでのクーポン{v:.0f}枚",
    ),
    "past_redemption_rate": (
        lambda v, c: f"uses {v:.0%} of coupons",
        lambda v, c: f"クーポン利用率{v:.0%}",
    ),
    "linked": (
        lambda v, c: "loyalty card linked" if v >= 0.5 else "no loyalty card linked",
        lambda v, c: "ポイントカード連携済み" if v >= 0.5 else "ポイントカード未連携",
    ),
    "local_hour": (
        lambda v, c: f"asked at {v:.0f}:00",
        lambda v, c: f"{v:.0f}時台の問い合わせ",
    ),
    "weekday": (
        lambda v, c: f"on a {_pick(_WEEKDAYS['en'], v)}",
        lambda v, c: f"{_pick(_WEEKDAYS['ja'], v)}曜日",
    ),
    "intent": (
        lambda v, c: f"the chat's intent: {_pick(INTENTS, v)}",
        lambda v, c: f"会話の意図: {_pick(INTENTS, v)}",
    ),
    "sentiment": (
        lambda v, c: f"mood in the chat {v:+.1f}",
        lambda v, c: f"会話の気分 {v:+.1f}",
    ),
    "hour_affinity": (
        lambda v, c: f"{v:.0%} of visits at this time of day",
        lambda v, c: f"この時間帯の来店が{v:.0%}",
    ),
    "discount_depth": (
        lambda v, c: f"discount worth {v:.0%} of a typical basket",
        lambda v, c: f"割引額は標準的な購入額の{v:.0%}",
    ),
    "discount_type": (
        lambda v, c: f"{_TYPE_WORDS['en'][_pick(DISCOUNT_TYPES, v)]} coupon",
        lambda v, c: f"{_TYPE_WORDS['ja'][_pick(DISCOUNT_TYPES, v)]}クーポン",
    ),
    "category": (
        lambda v, c: f"a {category_word(v, 'en')} offer",
        lambda v, c: f"{category_word(v, 'ja')}のクーポン",
    ),
    "min_basket_ratio": (
        lambda v, c: f"minimum basket {v:.0%} of a typical basket",
        lambda v, c: f"最低購入額は標準的な購入額の{v:.0%}",
    ),
    "category_affinity": (
        lambda v, c: f"buys {category_word(c, 'en')} on {v:.0%} of visits",
        lambda v, c: f"来店の{v:.0%}で{category_word(c, 'ja')}を購入",
    ),
    "intent_match": (
        lambda v, c: "the offer fits the chat" if v >= 0.5 else "the offer is off-topic",
        lambda v, c: "会話の内容に合うクーポン" if v >= 0.5 else "会話の内容とは別のクーポン",
    ),
    "min_basket_vs_monetary": (
        lambda v, c: f"minimum basket {v:.1f}× their usual spend",
        lambda v, c: f"最低購入額は普段の{v:.1f}倍",
    ),
}


REASONS: dict[Lang, dict[str, str]] = {
    "en": {
        "exploit": "Sent the offer with the highest expected value.",
        "explore": "Sent an offer chosen at random to keep learning (exploration).",
        "holdout": "The customer is in the campaign's holdout group: no coupon, by design.",
        "paced": "Held back by pacing: the budget is being spread over the campaign's window.",
        "cap_reached": "No coupon: the customer reached a per-customer cap.",
        "budget_exhausted": "No coupon: the campaign's budget is used up.",
        "no_eligible_offer": "No coupon: no offer was eligible for this customer.",
        "no_active_campaign": "No coupon: no campaign was active.",
        "opted_out": "No coupon: the customer opted out.",
        "policy_chose_none": "No coupon: no offer's expected value covered its cost.",
        "redis_unavailable": "No coupon: the budget store was unreachable (fail safe).",
        "model_error": "No coupon: the model could not score the offers (fail safe).",
        "rate_limited": "No coupon: this customer was issued coupons too fast (rate limit).",
        "drop_cancelled": "No coupon: the campaign drop that asked was cancelled.",
    },
    "ja": {
        "exploit": "期待値が最も高いクーポンを送りました。",
        "explore": "学習のため、無作為に選んだクーポンを送りました（探索）。",
        "holdout": "キャンペーンの比較対照群（ホールドアウト）のため、クーポンは送っていません。",
        "paced": "予算を期間全体に配分するため、今回は送りませんでした（ペース配分）。",
        "cap_reached": "お客様ごとの上限に達したため、クーポンはありません。",
        "budget_exhausted": "キャンペーンの予算を使い切ったため、クーポンはありません。",
        "no_eligible_offer": "このお客様に該当するクーポンがありませんでした。",
        "no_active_campaign": "実施中のキャンペーンがありませんでした。",
        "opted_out": "お客様が配信を停止しているため、クーポンはありません。",
        "policy_chose_none": "どのクーポンも期待値が費用を上回らなかったため、送っていません。",
        "redis_unavailable": "予算の記録先に接続できなかったため、安全のため送っていません。",
        "model_error": "モデルが採点できなかったため、安全のため送っていません。",
        "rate_limited": "短時間に発行が集中したため、今回は送っていません（発行数の制限）。",
        "drop_cancelled": "依頼元の一斉配信が取り消されたため、クーポンはありません。",
    },
}
_UNKNOWN_REASON = {
    "en": "The reason was not recorded (a decision logged before reasons were kept).",
    "ja": "理由は記録されていません（理由を記録する前の判断です）。",
}
_LEADS = {
    "en": ("Chosen because: ", "Against: ", "Scored as: "),
    "ja": ("選ばれた理由: ", "マイナス要因: ", "評価の内訳: "),
}
_SEP = {"en": ", ", "ja": "、"}


def reason_text(reason: str | None, lang: Lang) -> str:
    """One sentence for the decision's reason."""
    if reason is None:
        return _UNKNOWN_REASON[lang]
    return REASONS[lang].get(reason, reason)


def feature_text(name: str, value: float, category_code: float, lang: Lang) -> str:
    """What one feature's value was, in words."""
    phrases = _PHRASES.get(name)
    if phrases is None:
        return f"{name} = {value:g}"
    english, japanese = phrases
    return (japanese if lang == "ja" else english)(value, category_code)


@dataclass(frozen=True)
class Worded:
    """A feature effect ready to be worded: its phrase and its contribution."""

    text: str
    contribution: float


def summary(effects: Sequence[Worded], lang: Lang, *, sent: bool, top: int = 3) -> str:
    """ "Chosen because: visits 3.0 times a week (+0.80), ... Against: ... (-0.20)"."""
    up = [e for e in effects if e.contribution > 0][:top]
    down = [e for e in effects if e.contribution < 0][: max(1, top - 1)]
    because, against, scored = _LEADS[lang]
    parts = []
    if up:
        parts.append((because if sent else scored) + _join(up, lang))
    if down:
        parts.append(against + _join(down, lang))
    return (" " if lang == "en" else "").join(p + ("." if lang == "en" else "。") for p in parts)


def _join(effects: Sequence[Worded], lang: Lang) -> str:
    return _SEP[lang].join(f"{e.text} ({e.contribution:+.2f})" for e in effects)
