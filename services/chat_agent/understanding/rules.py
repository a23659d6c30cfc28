"""The rule layer: keyword patterns for messages whose intent is unambiguous.

Rules run before the embedding model, in priority order, on normalised text
(NFKC, lower case). Patterns for all languages are tried on every message because
customers mix them ("thanks kak", "クーポン please").

Write patterns from the exemplars, tests/data/intents/tuning/ and general knowledge,
never from tests/data/intents/frozen/: a unit test fails when a fragment of a pattern
(an alternative, see evaluation.fragments) matches a frozen line and nothing it may
have been written from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# A loyalty member number as printed on the card (the POS feed's example is "M0001").
_MEMBER_ID = re.compile(r"(?<![a-z0-9])m(\d{4,12})(?![0-9])")

_OPT_OUT = _any(
    r"配信.{0,3}(停止|解除|やめ|止め|いらな|要らな|不要|オフ)",
    r"(通知|お知らせ|メッセージ|連絡|宣伝).{0,6}(やめて|止めて|停止|オフ|切って|いらな|要らな|送らないで|しないで)",
    r"(購読|登録).?解除|受信拒否|送らないで|送ってこないで|送信停止",
    r"^(停止|ストップ|配信停止)(で|して|します|お願いします)?[。!！]*$",
    r"^(stop|unsubscribe|unsub|opt ?out|quit)[.! ]*$",
    r"\bunsubscribe\b|\bopt[- ]?(me )?out\b|\bremove me\b",
    r"\bstop (sending|messaging|texting|the (messages|notifications)|notif)",
    r"\b(no more|don't want (these|any|your)?) ?(messages|coupons|notifications|offers|texts)",
    r"\bdon'?t (message|text|contact) me\b|\b(turn off|mute) (the )?notifications\b",
    r"\bcancel (my )?(subscription|notifications)\b",
    r"^(berhenti|stop)[.! ]*$|\bberhenti (langganan|berlangganan|kirim)",
    r"\bjangan (kirim|hubungi)|\bstop (kirim|notif|promo|pesan)|\bmatikan (notif|pesan)",
    r"\bhapus saya dari\b",
    r"\b(ga|gak|nggak|enggak|tidak|ngga) (mau|usah)( \w+)? (pesan|kupon|promo|notif)",
)

_OPT_IN = _any(
    r"配信.{0,3}(再開|開始)|(通知|お知らせ).{0,3}(オン|on|再開)|受信.?再開|再登録|購読したい",
    r"メッセージ.{0,3}(再開|受け取りたい)|また.{0,12}(送って|届けて|通知して|配信して)",
    r"^(スタート|開始|再開)(して|します)?[。!！]*$",
    r"^(start|resume|subscribe|resubscribe|opt ?in|unstop)[.! ]*$",
    r"\bre-?subscribe\b|\bopt[- ]?(me )?(back )?in\b|\bsubscribe me\b|\bsign me (back )?up\b",
    r"\bturn (the )?(notifications|messages) (back )?on\b|\bstart sending\b",
    r"\b(send|resume|restart)\b.{0,25}\bagain\b|\brestart messages\b|\bresume (messages|notifications)\b",
    r"\b(want|like) (the )?(messages|coupons|deals|notifications) again\b",
    r"^(mulai|start)( lagi)?[.! ]*$|\blangganan lagi\b|\b(mulai|lanjut|lanjutkan) (langganan|kirim)",
    r"\bberlangganan\b|\b(nyalakan|aktifkan|hidupkan) (notif|pesan|lagi)",
    r"\bkirim (promo|kupon|pesan)\w* lagi\b|\b(mau|ingin) (dapat|terima) (pesan|promo|kupon) lagi\b",
    r"\bdaftar (lagi|ulang)\b",
)

_LINK = _any(
    r"会員(番号|カード|証|id)|会員.{0,3}(連携|登録|紐付|紐づ)|(ポイント|メンバーズ)カード",
    r"連携|紐付|紐づ|メンバー番号",
    r"\blink\b|\b(member|membership|loyalty|rewards|points|member's) (number|id|card|account)\b",
    r"\bconnect my (card|account)\b",
    r"\b(nomor|no|id|kartu|akun) member\b|\bkartu (poin|loyalitas|member)\b",
    r"\b(hubungkan|sambungkan|tautkan)\b",
)

_HELP = _any(
    r"ヘルプ|使い方|使いかた|どう.{0,5}(使う|使え)|何ができ|操作方法",
    r"問い合わせ",
    r"^(助けて|説明して|メニュー)(ください)?[。!！?？]*$",
    r"^(help|menu|commands?|instructions?)( please| pls| me)?[?!. ]*$",
    r"\bhelp me\b|\bi need help\b|\bwhat can you do\b|\bcontact support\b",
    r"\bhow (do|does|can|should) (i|we|this|it|you) (use|work|show|scan)\b",
    r"^(bantuan|tolong|menu|help|petunjuk|panduan)( dong| kak)?[?!. ]*$",
    r"\bcara (pakai|pake|menggunakan|kerja|pakainya)|\bbisa apa aja\b",
    r"\bbutuh bantuan\b|\bgimana caranya\b",
)

_DEALS = _any(
    r"クーポン|くーぽん|割引|割り引き|値引|セール|特売|お得|おとく|キャンペーン|半額|特典",
    r"安くなって|無料券|サービス券|得する|得な(もの|情報)",
    r"\b(coupons?|cupons?|deals?|discounts?|promos?|promotions?|vouchers?|offers?|bargains?)\b",
    r"\b(on sale|specials|bogo|half (price|off)|promo code|savings?|save money|cheap)\b",
    r"\b(kupon\w*|diskon\w*|promo\w*|potongan|cashback|gratis|murah|hemat|penawaran)\b",
    r"\bharga (spesial|promo)\b|\bsale\b",
)

# Words that make a message about coupons or products a complaint or a thank-you
# instead of a request, so the deal and product rules stand aside for the model.
_COMPLAINT_CUES = _any(
    r"使えな|読み取れな|最悪|ひどい|返金|がっかり|不親切|態度|期限.{0,3}切れ|されてな|されていな|間違",
    r"didn'?t|doesn'?t|won'?t|wasn'?t|not work|rejected|rude|refund|terrible|worst|awful|disappoint",
    r"\bexpired\b|charged|broken|\bwrong\b",
    r"(ga|gak|tidak|nggak) (bisa|masuk|kepotong)|kecewa|buruk|terburuk|refund|jutek|basi|kesel|parah",
    r"kedaluwarsa|ditolak|salah",
)
_THANKS_CUES = _any(
    r"ありがと|ありがた|有難|サンキュ|さんきゅ|あざー?す|感謝|助か|お礼",
    r"\b(thanks?|thank (you|u)|thx|tysm|ty|appreciated?|cheers)\b",
    r"terima ?kasih|makasi|\btrims\b|tengkyu|hatur nuhun",
)
_QUESTION_CUES = _any(
    r"[?？]|ある|あります|売って|おすすめ|オススメ|いくら|何が|どれ|ですか|教えて",
    r"\b(do you (have|sell)|any|what|which|how much|how many|recommend)\b",
    r"^(is|are|does|do|can|could|how|what|which|where|when)\b",
    r"\b(ada|jual|apa|berapa|rekomendasi|mana|gimana)\b",
)
_GREETING = _any(
    r"^(テンちゃん)?[、, ]*(こんにちは|こんにちわ|こんばんは|こんばんわ|おはよ|やっほ|ヤッホ|はじめまして|ハロー|はろー)",
    r"^(テンちゃん)?[、, ]*(もしもし|もしもーし|おっす|こんちゃ|ただいま|お疲れ|おつかれ|お久しぶり|ひさしぶり)",
    r"^(hi+|hello+|hey+|heya|hiya|yo|howdy|helo|hallo+|greetings|sup|morning|evening)\b",
    r"^good (morning|afternoon|evening)\b",
    r"^(halo+|hallo+|hai+|hy|hei|pagi|siang|sore|malam|permisi|assalamualaikum)\b",
    r"^(selamat|met) (pagi|siang|sore|malam)\b|^apa kabar\b",
)
# Short messages only: a long one that opens with a greeting usually goes on to ask
# for something, and the model should read the rest.
_SHORT = 30

_CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Order matters: a "唐揚げ弁当" is a bento, an "iced coffee" is coffee, not a drink.
    (
        "coffee",
        _any(
            r"[☕]",
            r"コーヒー|珈琲|カフェ|ラテ|カプチーノ|エスプレッソ|デカフェ",
            r"\b(coffee|latte|cappuccino|espresso|americano|decaf|mocha)\b",
            r"\b(kopi|kafein)\b",
        ),
    ),
    (
        "onigiri",
        _any(
            r"[🍙]",
            r"おにぎり|おむすび|オニギリ",
            r"\bonigiri\w*|rice ?balls?\b",
            r"\bnasi kepal\b",
        ),
    ),
    (
        "bento",
        _any(
            r"[🍱]",
            r"弁当|べんとう|ベントー|丼",
            r"\bbento\w*|lunch ?box|\blunch\b",
            r"\bnasi kotak\b|\bmakan siang\b",
        ),
    ),
    (
        "bakery",
        _any(
            r"[🍞🥐🥪🥯🍩]",
            r"パン(?!ダ|ツ|フレット)|サンド|クロワッサン|ベーグル|ドーナツ",
            r"\b(bread|bakery|croissants?|sandwich\w*|pastr(y|ies)|bagels?|donuts?|melon ?pan)\b",
            r"\broti\w*\b",
        ),
    ),
    (
        "sweets",
        _any(
            r"[🍰🍮🍦🍨🍫🎂🧁🍬]",
            r"スイーツ|デザート|プリン|ケーキ|アイス(?!コーヒー)|シュークリーム|チョコ|甘いもの",
            r"\b(sweets?|desserts?|cakes?|pudding|ice cream|chocolates?|candy)\b",
            r"\b(puding\w*|kue|es krim|coklat|cokelat|dessert|manisan)\b",
        ),
    ),
    (
        "snacks",
        _any(
            r"[🍟🍿🍗🍘]",
            r"お菓子|おかし|スナック|ポテチ|ポテトチップス|からあげ|唐揚げ|おやつ|チキン",
            r"\b(snacks?|chips|crisps|karaage|fried chicken|nuggets?)\b",
            r"\b(snack|camilan|cemilan|keripik|jajan\w*|ayam goreng\w*)\b",
        ),
    ),
    (
        "drinks",
        _any(
            r"[🥤🍵🧃🥛🍹]",
            r"飲み物|ドリンク|お茶|緑茶|紅茶|ミルクティー|ジュース|お水|牛乳|ミネラルウォーター",
            r"\b(drinks?|tea|juices?|water|soda|milk|beverages?|energy drinks?)\b",
            r"\b(minuman\w*|teh|jus|air mineral|susu\w*|soda)\b",
        ),
    ),
)


# Every pattern above by name, for the rule audit (evaluation.rule_fragments): the
# unit tests check that no fragment of these is backed only by the frozen test set.
PATTERNS: dict[str, re.Pattern[str]] = {
    "opt_out": _OPT_OUT,
    "opt_in": _OPT_IN,
    "link": _LINK,
    "member_id": _MEMBER_ID,
    "help": _HELP,
    "deals": _DEALS,
    "complaint_cues": _COMPLAINT_CUES,
    "thanks_cues": _THANKS_CUES,
    "question_cues": _QUESTION_CUES,
    "greeting": _GREETING,
    **{f"category:{name}": pattern for name, pattern in _CATEGORIES},
}


@dataclass(frozen=True)
class RuleHit:
    """A rule's verdict: the intent and the name of the rule that fired."""

    intent: str
    rule: str


def member_id(text: str) -> str | None:
    """The member number in normalised text, upper-cased (``M0042``), if any."""
    match = _MEMBER_ID.search(text)
    return f"M{match.group(1)}" if match else None


def category(text: str) -> str | None:
    """The first product category the normalised text mentions, in priority order."""
    for name, pattern in _CATEGORIES:
        if pattern.search(text):
            return name
    return None


def match(text: str) -> RuleHit | None:
    """Apply the rules in priority order to normalised text; None leaves it to the model."""
    if _OPT_OUT.search(text):
        return RuleHit("opt_out", "opt_out")
    if _OPT_IN.search(text):
        return RuleHit("opt_in", "opt_in")
    if member_id(text) or _LINK.search(text):
        return RuleHit("link_membership", "link")
    if _HELP.search(text):
        return RuleHit("help", "help")
    complaint, thanks = bool(_COMPLAINT_CUES.search(text)), bool(_THANKS_CUES.search(text))
    if not complaint and not thanks:
        if _DEALS.search(text):
            return RuleHit("wants_deals", "deals")
        if category(text) and _QUESTION_CUES.search(text):
            return RuleHit("product_question", "product")
    if thanks and not complaint and len(text) <= _SHORT and "?" not in text and "？" not in text:
        return RuleHit("thanks", "thanks")
    if _GREETING.search(text) and len(text) <= _SHORT and not complaint:
        return RuleHit("greeting", "greeting")
    return None
