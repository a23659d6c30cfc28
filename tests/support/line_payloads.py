"""Real LINE webhook payloads, signed the way the LINE platform signs them.

body, headers = signed_webhook(secret, [text_event("U1", "hello")])
client.post("/webhooks/line", data=body, headers=headers)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

DESTINATION = "Udeadbeefdeadbeefdeadbeefdeadbeef"


def user_id() -> str:
    """A random LINE user id (U + 32 hex digits)."""
    return "U" + uuid.uuid4().hex


def _base(
    kind: str, user: str | None, ts: int | None, reply_token: bool, source_type: str = "user"
) -> dict[str, Any]:
    source: dict[str, Any] = {"type": source_type}
    if user is not None:
        source["userId"] = user
    if source_type == "group":
        source["groupId"] = "C" + uuid.uuid4().hex
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": ts if ts is not None else int(time.time() * 1000),
        "source": source,
        "webhookEventId": "01" + uuid.uuid4().hex[:24].upper(),
        "deliveryContext": {"isRedelivery": False},
    }
    if reply_token:
        event["replyToken"] = uuid.uuid4().hex
    return event


def text_event(user: str, text: str, ts: int | None = None) -> dict[str, Any]:
    event = _base("message", user, ts, True)
    event["message"] = {
        "type": "text",
        "id": str(uuid.uuid4().int)[:18],
        "quoteToken": uuid.uuid4().hex,
        "text": text,
    }
    return event


def sticker_event(user: str, ts: int | None = None) -> dict[str, Any]:
    event = _base("message", user, ts, True)
    event["message"] = {
        "type": "sticker",
        "id": str(uuid.uuid4().int)[:18],
        "packageId": "446",
        "stickerId": "1988",
        "stickerResourceType": "STATIC",
        "keywords": ["happy"],
    }
    return event


def image_event(user: str, ts: int | None = None) -> dict[str, Any]:
    event = _base("message", user, ts, True)
    event["message"] = {
        "type": "image",
        "id": str(uuid.uuid4().int)[:18],
        "contentProvider": {"type": "line"},
    }
    return event


def follow_event(user: str, ts: int | None = None) -> dict[str, Any]:
    event = _base("follow", user, ts, True)
    event["follow"] = {"isUnblocked": False}
    return event


def unfollow_event(user: str, ts: int | None = None) -> dict[str, Any]:
    return _base("unfollow", user, ts, False)


def postback_event(user: str, data: str, ts: int | None = None) -> dict[str, Any]:
    event = _base("postback", user, ts, True)
    event["postback"] = {"data": data}
    return event


def group_text_event(text: str, user: str | None = None) -> dict[str, Any]:
    event = _base("message", user, None, True, source_type="group")
    event["message"] = {"type": "text", "id": str(uuid.uuid4().int)[:18], "text": text}
    return event


def join_event() -> dict[str, Any]:
    return _base("join", None, None, True, source_type="group")


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    """The same event as LINE redelivers it (same webhookEventId, isRedelivery true)."""
    copy = json.loads(json.dumps(event))
    copy["deliveryContext"] = {"isRedelivery": True}
    return copy


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_webhook(
    secret: str, events: list[dict[str, Any]], destination: str = DESTINATION
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of a LINE webhook call carrying `events`."""
    body = json.dumps({"destination": destination, "events": events}, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Line-Signature": sign(secret, body),
        "User-Agent": "LineBotWebhook/2.0",
    }
    return body, headers


def account_link_event(
    user: str, nonce: str, result: str = "ok", ts: int | None = None
) -> dict[str, Any]:
    """The platform's `accountLink` event after its account-link dialog."""
    event = _base("accountLink", user, ts, True)
    event["link"] = {"result": result, "nonce": nonce}
    return event
