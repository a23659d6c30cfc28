"""A recording stand-in for the LINE Messaging API, for tests, benchmarks and the demo.

It listens on 127.0.0.1 (random port; tenin/local_http.py serves it), records every
request, and answers the way the LINE platform does where tenin depends on it:

* `POST /v2/bot/message/reply` — 200 once per reply token; the same token again (or a
  token marked expired) gets 400 "Invalid reply token";
* `POST /v2/bot/message/push` — 200; a repeated `X-Line-Retry-Key` whose first request
  was accepted gets 409 with `x-line-accepted-request-id` and is not delivered again;
* `POST /v2/bot/user/{userId}/linkToken` — 200 `{"linkToken": ...}`, a fresh random
  token for that user (account link); `recorder.link_tokens` lists what it issued;
* a wrong `Authorization` gets 401; a body that is not JSON (a sender killed mid-request)
  gets 400 and is not delivered;
* with `push_rate_per_s`, pushes beyond that rate (a token bucket holding one second's
  pushes) get 429 with `Retry-After` (whole seconds) and are not delivered, as a channel
  over its rate limit would answer; `recorder.rate_limited` counts them.

Tests script failures for the next calls: `recorder.fail(429, times=2, retry_after=1)`,
`recorder.fail(500)`, `recorder.fail(400)`; `deliver=True` makes a scripted failure
still deliver (LINE accepted the message but the answer was lost).

    with LineRecorder(token="t") as line:
        settings = replace(settings, messaging_api_base=line.base_url)
        ...
        wait_for(lambda: line.delivered_to("U123"))

The module is longer than about 300 lines because it is one fake platform: splitting the
reply, push, link-token and rate-limit answers apart would scatter one shared state.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.ids import random_uuid
from tenin.local_http import Answer, LocalHttpServer, Request

REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"
LINK_TOKEN = re.compile(r"^/v2/bot/user/(?P<user>[^/]+)/linkToken$")


@dataclass(frozen=True)
class Recorded:
    """One request as the recorder received it, and what it answered."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int
    at: float

    @property
    def retry_key(self) -> str | None:
        return self.headers.get("x-line-retry-key")


@dataclass(frozen=True)
class Delivered:
    """Messages the platform accepted: what the customer would see."""

    channel: str  # "reply" | "push"
    to: str | None  # the user id of a push; None for a reply
    reply_token: str | None
    messages: list[dict[str, Any]]
    request_id: str
    at: float

    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages if m.get("type") == "text"]


@dataclass
class _Scripted:
    status: int
    remaining: int
    path: str | None
    retry_after: str | None
    message: str
    deliver: bool


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Recorded] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    used_tokens: set[str] = field(default_factory=set)
    expired_tokens: set[str] = field(default_factory=set)
    accepted_keys: dict[str, str] = field(default_factory=dict)
    token_owner: dict[str, str] = field(default_factory=dict)
    link_tokens: dict[str, str] = field(default_factory=dict)  # link token → user id
    script: deque[_Scripted] = field(default_factory=deque)
    rate_limited: int = 0


class _PushBucket:
    """A token bucket of one second's pushes, refilled at the rate (called under the lock)."""

    def __init__(self, rate_per_s: float) -> None:
        self.rate = rate_per_s
        self.burst = max(1.0, rate_per_s)
        self.tokens = self.burst
        self.at = time.monotonic()

    def take(self, now: float) -> float:
        """0 if a push may go now, else the seconds until one may."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class LineRecorder:
    """An HTTP server (tenin/local_http.py) playing the LINE Messaging API."""

    def __init__(
        self,
        token: str | None = None,
        latency_s: float = 0.0,
        push_rate_per_s: float | None = None,
    ) -> None:
        self.token = token
        self.latency_s = latency_s
        self._state = _State()
        self._push_bucket = _PushBucket(push_rate_per_s) if push_rate_per_s else None
        self._server = LocalHttpServer(self._serve, delay_s=lambda: self.latency_s)

    # --- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.address
        return f"http://{host}:{port}"

    def start(self) -> LineRecorder:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LineRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        path: str | None = None,
        retry_after: float | str | None = None,
        message: str = "",
        deliver: bool = False,
    ) -> None:
        """Answer the next `times` calls (to `path`, or any) with `status`."""
        with self._state.lock:
            self._state.script.append(
                _Scripted(
                    status,
                    times,
                    path,
                    None if retry_after is None else str(retry_after),
                    message or f"scripted {status}",
                    deliver,
                )
            )

    def expire_reply_token(self, token: str) -> None:
        """Make LINE reject `token` as if more than a minute had passed."""
        with self._state.lock:
            self._state.expired_tokens.add(token)

    def own_reply_token(self, token: str, user_id: str) -> None:
        """Tell the recorder whose token it is, so `delivered_to` sees replies too."""
        with self._state.lock:
            self._state.token_owner[token] = user_id

    # --- reading --------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def delivered(self) -> list[Delivered]:
        with self._state.lock:
            return list(self._state.delivered)

    def owner_of(self, token: str | None) -> str | None:
        """The user a reply token was issued to (see `own_reply_token`)."""
        with self._state.lock:
            return self._state.token_owner.get(token) if token else None

    def delivered_to(self, user_id: str) -> list[Delivered]:
        """What `user_id` received, by push or by reply to one of their tokens."""
        with self._state.lock:
            owners = dict(self._state.token_owner)
            return [
                d
                for d in self._state.delivered
                if d.to == user_id or (d.reply_token and owners.get(d.reply_token) == user_id)
            ]

    @property
    def link_tokens(self) -> dict[str, str]:
        """Link tokens issued so far, each with the user it was issued for."""
        with self._state.lock:
            return dict(self._state.link_tokens)

    @property
    def rate_limited(self) -> int:
        """Pushes answered 429 because they came faster than `push_rate_per_s`."""
        with self._state.lock:
            return self._state.rate_limited

    @property
    def most_in_flight(self) -> int:
        """The most requests this server was answering at the same moment."""
        return self._server.most_in_flight

    def calls(self, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if path is None or r.path == path]

    # --- serving --------------------------------------------------------------------

    def _answer(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        state = self._state
        request_id = random_uuid().hex
        out_headers = {"x-line-request-id": request_id}
        link_token_for = LINK_TOKEN.match(path)
        if path not in (REPLY, PUSH) and link_token_for is None:
            return 404, out_headers, {"message": "Not found"}
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return 401, out_headers, {"message": "Authentication failed"}
        if path in (REPLY, PUSH) and "_raw" in body:
            # A truncated or broken body (a sender killed mid-request): refused, not delivered.
            return 400, out_headers, {"message": "The request body has 1 error(s)"}
        scripted = self._next_script(path)
        if scripted is None and path == PUSH and self._push_bucket is not None:
            wait = self._push_bucket.take(time.monotonic())
            if wait > 0:
                state.rate_limited += 1
                out_headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return 429, out_headers, {"message": "The API rate limit has been exceeded."}
        if scripted is None and link_token_for is not None:
            token = secrets.token_urlsafe(24)
            state.link_tokens[token] = link_token_for.group("user")
            return 200, out_headers, {"linkToken": token}
        if scripted is not None:
            if scripted.retry_after is not None:
                out_headers["Retry-After"] = scripted.retry_after
            if scripted.deliver:
                self._deliver(path, headers, body, request_id)
            return scripted.status, out_headers, {"message": scripted.message}
        if path == REPLY:
            token = str(body.get("replyToken", ""))
            if token in state.used_tokens or token in state.expired_tokens or not token:
                return 400, out_headers, {"message": "Invalid reply token"}
        else:
            key = headers.get("x-line-retry-key")
            if key and key in state.accepted_keys:
                out_headers["x-line-accepted-request-id"] = state.accepted_keys[key]
                return 409, out_headers, {"message": "The retry key is already accepted"}
        self._deliver(path, headers, body, request_id)
        return 200, out_headers, {}

    def _next_script(self, path: str) -> _Scripted | None:
        for scripted in self._state.script:
            if scripted.path is None or scripted.path == path:
                scripted.remaining -= 1
                if scripted.remaining <= 0:
                    self._state.script.remove(scripted)
                return scripted
        return None

    def _deliver(
        self, path: str, headers: dict[str, str], body: dict[str, Any], request_id: str
    ) -> None:
        state = self._state
        if path == REPLY:
            state.used_tokens.add(str(body.get("replyToken")))
        key = headers.get("x-line-retry-key")
        if path == PUSH and key:
            state.accepted_keys[key] = request_id
        state.delivered.append(
            Delivered(
                channel="reply" if path == REPLY else "push",
                to=body.get("to") if path == PUSH else None,
                reply_token=body.get("replyToken") if path == REPLY else None,
                messages=list(body.get("messages") or []),
                request_id=request_id,
                at=time.time(),
            )
        )

    def _serve(self, request: Request) -> Answer:
        """Answer one request (on the server's loop thread)."""
        if request.method != "POST":
            return 405, {}, b'{"message":"Method not allowed"}'
        raw = request.body
        try:
            # orjson parses a push body in ~3 µs where the stdlib took ~7 µs (of ~100 µs a push).
            body = orjson.loads(raw or b"{}") if not request.truncated else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"_raw": raw.decode("utf-8", "replace")}
        with self._state.lock:
            status, out_headers, answer = self._answer(request.path, request.headers, body)
            self._state.requests.append(
                Recorded(request.path, request.headers, body, status, time.time())
            )
        return status, out_headers, orjson.dumps(answer)
