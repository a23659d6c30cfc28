"""Thin HTTP clients for tenin's three public interfaces, as real clients would call them:
the LINE platform's signed webhook, a store's POS feed, and a marketer's campaign API.
Used by the demo and by the end-to-end tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Any

import requests


def line_signature(channel_secret: str, body: bytes) -> str:
    """X-Line-Signature: base64(HMAC-SHA256(channel secret, raw body))."""
    return base64.b64encode(
        hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    ).decode()


def line_event(
    kind: str,
    user_id: str,
    at: datetime,
    *,
    text: str | None = None,
    postback: str | None = None,
    reply_token: str | None = None,
    event_id: str | None = None,
    redelivery: bool = False,
) -> dict[str, Any]:
    """One webhook event in the LINE Messaging API's shape."""
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(at.timestamp() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": event_id or uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind in ("message", "follow", "postback"):
        event["replyToken"] = reply_token or uuid.uuid4().hex
    if kind == "message":
        event["message"] = {"type": "text", "id": uuid.uuid4().hex[:18], "text": text or ""}
    if kind == "postback":
        event["postback"] = {"data": postback or ""}
    return event


class LineWebhookClient:
    """Posts signed webhooks to chat_agent, as the LINE platform does."""

    def __init__(self, base_url: str, channel_secret: str, destination: str = "Utenin") -> None:
        self.url = f"{base_url}/webhooks/line"
        self.secret = channel_secret
        self.destination = destination
        self.http = requests.Session()

    def post(
        self, events: list[dict[str, Any]], *, signature: str | None = None
    ) -> requests.Response:
        """Send one webhook delivery (several events may ride in one)."""
        body = json.dumps({"destination": self.destination, "events": events}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Line-Signature": signature
            if signature is not None
            else line_signature(self.secret, body),
        }
        return self.http.post(self.url, data=body, headers=headers, timeout=10)


class PosClient:
    """A store's till: posts transactions and voids with its store key."""

    def __init__(self, base_url: str, store_key: str, store_id: str) -> None:
        self.base = base_url
        self.store_id = store_id
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {store_key}"

    def transactions(self, transactions: list[dict[str, Any]]) -> requests.Response:
        return self.http.post(
            f"{self.base}/v1/pos/transactions",
            json={"store_id": self.store_id, "transactions": transactions},
            timeout=60,
        )

    def void(
        self, transaction_id: str, occurred_at: str, reason: str = "customer return"
    ) -> requests.Response:
        return self.http.post(
            f"{self.base}/v1/pos/voids",
            json={
                "store_id": self.store_id,
                "transaction_id": transaction_id,
                "occurred_at": occurred_at,
                "reason": reason,
            },
            timeout=30,
        )

    def precheck(self, code: str) -> requests.Response:
        return self.http.get(
            f"{self.base}/v1/coupons/{code}", params={"store_id": self.store_id}, timeout=10
        )


class MarketerClient:
    """A marketer: the campaign API on campaign_engine, reports on redemption_tracker."""

    def __init__(self, engine_url: str, tracker_url: str, key: str) -> None:
        self.engine = engine_url
        self.tracker = tracker_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def create_campaign(self, body: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{self.engine}/v1/campaigns", json=body, timeout=10)

    def transition(self, campaign_id: str, action: str) -> requests.Response:
        return self.http.post(f"{self.engine}/v1/campaigns/{campaign_id}/{action}", timeout=10)

    def campaign(self, campaign_id: str) -> requests.Response:
        return self.http.get(f"{self.engine}/v1/campaigns/{campaign_id}", timeout=10)

    def report(self, campaign_id: str, fmt: str | None = None) -> requests.Response:
        params = {"format": fmt} if fmt else None
        return self.http.get(
            f"{self.tracker}/v1/campaigns/{campaign_id}/report", params=params, timeout=30
        )

    def statements(self, campaign_id: str, period: str) -> requests.Response:
        return self.http.get(
            f"{self.tracker}/v1/statements",
            params={"campaign_id": campaign_id, "period": period},
            timeout=30,
        )
