"""LINE message objects built from persona lines: texts, the coupon and its QR image."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.events import Discount, IssuedCoupon, supported_language

# The stores are in Japan: expiry times and the local hour of a request are store time.
STORE_TZ = ZoneInfo("Asia/Tokyo")
MAX_TEXT = 5000  # LINE's limit for one text message

Message = dict[str, Any]

_WEEKDAYS_JA = "月火水木金土日"
# Spelled out rather than strftime("%b"), which follows the process locale.
_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MONTHS_ID = ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"]


def text(body: str) -> Message:
    """A LINE text message."""
    return {"type": "text", "text": body[:MAX_TEXT]}


def image(url: str) -> Message:
    """A LINE image message showing `url` (full size and preview)."""
    return {"type": "image", "originalContentUrl": url, "previewImageUrl": url}


def with_quick_replies(messages: list[Message], items: list[dict[str, Any]]) -> list[Message]:
    """The messages with quick-reply buttons on the last one (where LINE shows them)."""
    if not messages or not items:
        return messages
    last = dict(messages[-1])
    last["quickReply"] = {"items": items[:13]}
    return [*messages[:-1], last]


def quick_reply_items(
    persona_items: list[dict[str, Any]], *, opted_out: bool
) -> list[dict[str, Any]]:
    """The persona's buttons, without "stop" for a customer who already stopped."""
    if not opted_out:
        return persona_items
    return [i for i in persona_items if i.get("action", {}).get("data") != "action=stop"]


def qr_url(public_base_url: str, code: str) -> str:
    """Where this service serves the QR image of a coupon code."""
    return f"{public_base_url.rstrip('/')}/coupons/{quote(code, safe='')}/qr.png"


def format_expiry(expires_at: datetime, language: str) -> str:
    """The expiry in store time, written the way a customer of `language` reads it."""
    local = expires_at.astimezone(STORE_TZ)
    language = supported_language(language)
    if language == "ja":
        weekday = _WEEKDAYS_JA[local.weekday()]
        return f"{local.month}月{local.day}日({weekday}) {local:%H:%M}"
    if language == "id":
        return f"{local.day} {_MONTHS_ID[local.month - 1]} {local:%H:%M} JST"
    return f"{_MONTHS_EN[local.month - 1]} {local.day}, {local:%H:%M} JST"


def describe_discount(discount: Discount, min_basket: int, language: str) -> str:
    """What the coupon takes off, and the minimum basket if there is one."""
    language = supported_language(language)
    value = discount.value
    phrases = {
        "ja": {"amount": f"{value:,}円引き", "percent": f"{value}%オフ", "free_item": "1個無料"},
        "en": {"amount": f"¥{value:,} off", "percent": f"{value}% off", "free_item": "1 item free"},
        "id": {
            "amount": f"potongan ¥{value:,}",
            "percent": f"diskon {value}%",
            "free_item": "gratis 1 item",
        },
    }[language]
    phrase = phrases[discount.type]
    if min_basket > 0:
        phrase += {
            "ja": f"（{min_basket:,}円以上のお買い上げで）",
            "en": f" (on a basket of ¥{min_basket:,} or more)",
            "id": f" (min. belanja ¥{min_basket:,})",
        }[language]
    return phrase


def coupon_messages(
    pitch: str, coupon: IssuedCoupon, language: str, public_base_url: str
) -> list[Message]:
    """The coupon as LINE messages: the pitch with the discount line, then the QR image."""
    details = describe_discount(coupon.discount, coupon.min_basket, language)
    return [text(f"{pitch}\n🎫 {details}"), image(qr_url(public_base_url, coupon.code))]
