"""The delivery loop's batch sender: a claimed batch attempted concurrently from one thread
through libcurl's multi interface (pycurl), at most `in_flight` requests at a time
(docs/interfaces.md § Campaign drops, "Throughput").

Each attempt is the same call `LineClient.reply` / `LineClient.push` makes (same path,
body, `Authorization`, `X-Line-Retry-Key`), and its answer the same `LineResponse`. libcurl
builds requests and parses answers in C and keeps its connections alive (a connection the
server closed is replaced, and a request that found it dead is resent by libcurl before
anything reached the server). Threads of `http.client` cost ~220 µs of CPU per push,
mostly in Python's header parsing and in the sender threads fighting over the GIL; one
thread driving libcurl costs ~80 µs (bench/drop_pushes.py).

The caller decides when each attempt may start (`ready`): at once, after a wait (the
channel's push bucket), or not in this batch (the channel is paused by a 429, or the
worker is stopping), so the rate and the pause stay the delivery loop's.

Proxies come from the environment as libcurl reads them (`http_proxy`, `https_proxy`,
`no_proxy`), TLS is verified against the CA bundle requests would use (its own, or
REQUESTS_CA_BUNDLE), and `.netrc` is never read: the channel token is the only credential.
"""

from __future__ import annotations

import io
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pycurl
import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from services.chat_agent import metrics
from services.chat_agent.delivery.outcomes import Attempt, Claim
from services.chat_agent.line.client import ACCEPTED_REQUEST_ID, LineResponse, parse_retry_after
from shared.config import Settings

# When an attempt may start: 0 now, > 0 ask again after that many seconds, None not in
# this batch (the caller has handed the claim back).
Ready = Callable[[Claim], float | None]
_HEADERS = {"retry-after", "x-line-request-id", ACCEPTED_REQUEST_ID}
_IDLE_SELECT_S = 0.05


@dataclass
class _Transfer:
    claim: Claim
    body: io.BytesIO
    headers: dict[str, str]
    started: float

    def header_line(self, line: bytes) -> None:
        """libcurl's header callback: keeps the few headers an answer is read for."""
        name, sep, value = line.decode("latin-1").partition(":")
        if line.startswith(b"HTTP/"):
            self.headers.clear()  # a new answer (after a 100 Continue or a redirect)
        elif sep and name.strip().lower() in _HEADERS:
            self.headers[name.strip().lower()] = value.strip()


class CurlSender:
    """Attempts a batch of claims, `in_flight` at a time, from the calling thread."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        in_flight: int,
        timeout_s: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._authorization = f"Authorization: Bearer {access_token}"
        self._multi = pycurl.CurlMulti()
        self._idle = [_easy(timeout_s, verify) for _ in range(max(1, in_flight))]
        self._running: dict[pycurl.Curl, _Transfer] = {}

    def send_all(self, claims: Sequence[Claim], ready: Ready) -> list[Attempt]:
        """Attempt each claim once (those `ready` turns away are left out); returns each
        attempt with what LINE answered."""
        waiting, attempts = deque(claims), []
        try:
            while waiting or self._running:
                pause = 0.0
                while waiting and self._idle:
                    wait = ready(waiting[0])
                    if wait is None:
                        waiting.popleft()
                    elif wait > 0:
                        pause = wait
                        break
                    else:
                        self._start(waiting.popleft())
                attempts += self._progress()
                if self._running:
                    self._multi.select(min(pause, _IDLE_SELECT_S) if pause else _IDLE_SELECT_S)
                elif pause:
                    time.sleep(pause)
        except BaseException:
            self._abandon()  # the caller's claims stay leased and come due again
            raise
        return attempts

    def _abandon(self) -> None:
        """Drop the transfers of a batch that failed, so the next batch starts clean."""
        for handle in list(self._running):
            self._multi.remove_handle(handle)
            self._idle.append(handle)
        self._running.clear()

    def close(self) -> None:
        for handle in [*self._running, *self._idle]:
            handle.close()
        self._multi.close()

    def _start(self, claim: Claim) -> None:
        handle = self._idle.pop()
        headers = [self._authorization, _JSON, _NO_EXPECT]
        payload: dict[str, Any]
        if claim.channel == "reply":
            path = "/v2/bot/message/reply"
            payload = {"replyToken": claim.reply_token, "messages": claim.messages}
        else:
            path = "/v2/bot/message/push"
            payload = {"to": claim.line_user_id, "messages": claim.messages}
            headers.append(f"X-Line-Retry-Key: {claim.retry_key}")
        transfer = _Transfer(claim, io.BytesIO(), {}, time.perf_counter())
        handle.setopt(pycurl.URL, self._base + path)
        handle.setopt(pycurl.HTTPHEADER, headers)
        handle.setopt(pycurl.COPYPOSTFIELDS, orjson.dumps(payload))
        handle.setopt(pycurl.WRITEDATA, transfer.body)
        handle.setopt(pycurl.HEADERFUNCTION, transfer.header_line)
        self._running[handle] = transfer
        self._multi.add_handle(handle)

    def _progress(self) -> list[Attempt]:
        """Let libcurl move every transfer on; the attempts that finished."""
        while self._multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        finished: list[Attempt] = []
        while True:
            queued, ok, failed = self._multi.info_read()
            for handle in ok:
                finished.append(self._finish(handle, None))
            for handle, errno, message in failed:
                finished.append(self._finish(handle, f"curl error {errno}: {message}"[:200]))
            if not queued:
                return finished

    def _finish(self, handle: pycurl.Curl, error: str | None) -> Attempt:
        transfer = self._running.pop(handle)
        self._multi.remove_handle(handle)
        self._idle.append(handle)
        claim = transfer.claim
        metrics.LINE_API_SECONDS.labels(claim.channel).observe(
            time.perf_counter() - transfer.started
        )
        if error is not None:
            return claim, LineResponse(status=0, message=error)
        status = int(handle.getinfo(pycurl.RESPONSE_CODE))
        ok = 200 <= status < 300
        headers = transfer.headers
        return claim, LineResponse(
            status=status,
            message="" if ok else _error_message(transfer.body.getvalue()),
            retry_after_s=parse_retry_after(headers.get("retry-after")),
            request_id=headers.get("x-line-request-id"),
            accepted_request_id=headers.get(ACCEPTED_REQUEST_ID),
        )


_JSON = "Content-Type: application/json; charset=utf-8"
_NO_EXPECT = "Expect:"  # no "100 Continue" round trip before a body over 1 KiB


def _easy(timeout_s: float, verify: bool | str) -> pycurl.Curl:
    handle = pycurl.Curl()
    handle.setopt(pycurl.POST, 1)
    handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM (worker threads)
    handle.setopt(pycurl.TIMEOUT_MS, int(timeout_s * 1000))
    handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(timeout_s, 5.0) * 1000))
    handle.setopt(pycurl.TCP_NODELAY, 1)
    handle.setopt(pycurl.NETRC, pycurl.NETRC_IGNORED)
    if verify is False:
        handle.setopt(pycurl.SSL_VERIFYPEER, 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 0)
    else:
        where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
        handle.setopt(pycurl.CAPATH if os.path.isdir(where) else pycurl.CAINFO, where)
    return handle


def delivery_sender(settings: Settings, in_flight: int) -> CurlSender:
    """The worker's batch sender to `MESSAGING_API_BASE`, TLS verified as requests would."""
    base = settings.messaging_api_base
    verify = requests.Session().merge_environment_settings(base, {}, None, None, None)["verify"]
    return CurlSender(
        base,
        settings.line_channel_access_token,
        in_flight=in_flight,
        verify=True if verify is None else verify,
    )


def _error_message(raw: bytes) -> str:
    """LINE's `message` field of an error answer, or the start of a body that is not JSON."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")[:200]
    return str(data.get("message", ""))[:200] if isinstance(data, dict) else ""
