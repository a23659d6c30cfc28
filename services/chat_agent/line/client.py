"""A thin client for the LINE Messaging API calls tenin makes: reply, push, link token.

It only sends and reports what LINE answered; deciding whether to retry, fall back to
push or give up is the delivery loop's job (`delivery/loop.py`).
"""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

ACCEPTED_REQUEST_ID = "x-line-accepted-request-id"


@dataclass(frozen=True)
class LineResponse:
    """What LINE answered; `status` 0 means no answer (connection error or timeout)."""

    status: int
    message: str = ""
    retry_after_s: float | None = None
    request_id: str | None = None
    accepted_request_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """5xx, 429 and no answer at all are worth another try; other 4xx never are."""
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def invalid_reply_token(self) -> bool:
        return self.status == 400 and "reply token" in self.message.lower()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class LineClient:
    """Reply and push over HTTP with the channel access token."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = access_token
        self._timeout_s = timeout_s
        self._http = session or requests.Session()

    def reply(self, reply_token: str, messages: list[dict[str, Any]]) -> LineResponse:
        """POST /v2/bot/message/reply."""
        return self._post(
            "/v2/bot/message/reply", {"replyToken": reply_token, "messages": messages}, {}
        )

    def push(
        self, user_id: str, messages: list[dict[str, Any]], retry_key: uuid.UUID
    ) -> LineResponse:
        """POST /v2/bot/message/push with X-Line-Retry-Key, so a retried push lands once."""
        return self._post(
            "/v2/bot/message/push",
            {"to": user_id, "messages": messages},
            {"X-Line-Retry-Key": str(retry_key)},
        )

    def issue_link_token(self, user_id: str) -> tuple[LineResponse, str | None]:
        """POST /v2/bot/user/{userId}/linkToken: the platform's token for one account link."""
        path = f"/v2/bot/user/{quote(user_id, safe='')}/linkToken"
        response, body = self._call(path, None, {})
        token = body.get("linkToken") if response.ok else None
        return response, token if isinstance(token, str) and token else None

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> LineResponse:
        return self._call(path, body, headers)[0]

    def _call(
        self, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[LineResponse, dict[str, Any]]:
        try:
            response = self._http.post(
                self._base + path,
                data=b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Content-Type": "application/json; charset=utf-8",
                    **headers,
                },
                timeout=self._timeout_s,
            )
        except requests.RequestException as exc:
            return LineResponse(status=0, message=f"{type(exc).__name__}"), {}
        answer = LineResponse(
            status=response.status_code,
            message=_error_message(response),
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            request_id=response.headers.get("x-line-request-id"),
            accepted_request_id=response.headers.get(ACCEPTED_REQUEST_ID),
        )
        return answer, _json_object(response) if answer.ok else {}


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(response: requests.Response) -> str:
    if response.ok:
        return ""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message", ""))[:200] if isinstance(data, dict) else ""
