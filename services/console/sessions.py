"""Server-side sessions (docs/console.md § Security model).

The browser holds only a random session id in an HttpOnly, SameSite=Lax cookie (Secure
behind https); the session's data, the marketer key among it, stays on the server, in
Redis under a SHA-256 of the id (a dump of Redis hands out no live cookie). A session
expires when idle (`idle_seconds` since its last request; htmx polls of the live regions do
not count, so an open tab does not keep a session alive) and its id is replaced at sign-in
(`rotate`), so an id planted before sign-in is worthless after it.

Without REDIS_URL the sessions live in the process (`MemoryStore`): run one worker then.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from redis import Redis
from werkzeug.datastructures import CallbackDict

COOKIE_NAME = "tenin_console"
LAST_SEEN = "_seen"


class SessionStore(Protocol):
    def load(self, key: str) -> str | None: ...
    def save(self, key: str, value: str, ttl_s: int) -> None: ...
    def delete(self, key: str) -> None: ...


class RedisStore:
    """Sessions in Redis, each expiring on its own once idle."""

    def __init__(self, client: Redis, namespace: str) -> None:
        self._redis = client
        self._prefix = f"{namespace}:console:session:"

    def load(self, key: str) -> str | None:
        value = self._redis.get(self._prefix + key)
        return None if value is None else str(value)

    def save(self, key: str, value: str, ttl_s: int) -> None:
        self._redis.set(self._prefix + key, value, ex=ttl_s)

    def delete(self, key: str) -> None:
        self._redis.delete(self._prefix + key)


class MemoryStore:
    """Sessions in this process (no REDIS_URL): for one worker, tests and the laptop."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[str, float]] = {}
        self._clock = clock

    def load(self, key: str) -> str | None:
        with self._lock:
            value, until = self._data.get(key, ("", 0.0))
            return value if until > self._clock() else None

    def save(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            now = self._clock()
            if len(self._data) > 10_000:
                self._data = {k: v for k, v in self._data.items() if v[1] > now}
            self._data[key] = (value, now + ttl_s)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The data of one session; `sid` is None until first saved."""

    def __init__(self, data: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(_: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.modified = False
        self.rotate_requested = False
        self.ended = False

    def rotate(self) -> None:
        """Give the session a new id at the next save (sign-in)."""
        self.rotate_requested = True
        self.modified = True

    def end(self) -> None:
        """Forget the session (sign-out): its data goes, the cookie is cleared."""
        self.clear()
        self.ended = True


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSessionInterface(SessionInterface):
    """Flask's session, kept in a `SessionStore` behind a random id."""

    def __init__(
        self,
        store: SessionStore,
        idle_seconds: float,
        secure: Callable[[Request], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.idle_seconds = idle_seconds
        self._secure = secure
        self._clock = clock

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(COOKIE_NAME)
        if not sid or len(sid) > 100:
            return ServerSession()
        raw = self.store.load(_digest(sid))
        if raw is None:
            return ServerSession()
        data = json.loads(raw)
        if self._clock() - float(data.get(LAST_SEEN, 0)) > self.idle_seconds:
            self.store.delete(_digest(sid))
            return ServerSession()  # idle too long: a fresh, empty session
        return ServerSession(data, sid)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        secure = self._secure_now()
        if session.ended or (not session and session.sid is None):
            if session.sid is not None:
                self.store.delete(_digest(session.sid))
            if session.ended:
                response.delete_cookie(COOKIE_NAME, path="/", secure=secure, httponly=True)
            return
        if self._is_poll() and not session.modified and session.sid is not None:
            return  # a live region refreshing itself is not the marketer being active
        if session.rotate_requested and session.sid is not None:
            self.store.delete(_digest(session.sid))
            session.sid = None
        new = session.sid is None
        session.sid = session.sid or secrets.token_urlsafe(32)
        session[LAST_SEEN] = self._clock()
        ttl = int(self.idle_seconds) + 60  # the idle check above decides; this only tidies
        self.store.save(_digest(session.sid), json.dumps(dict(session)), ttl)
        if new:
            response.set_cookie(
                COOKIE_NAME,
                session.sid,
                httponly=True,
                samesite="Lax",
                secure=secure,
                path="/",
            )
        response.vary.add("Cookie")

    def _secure_now(self) -> bool:
        from flask import request

        return self._secure(request)

    @staticmethod
    def _is_poll() -> bool:
        from flask import request

        return request.method == "GET" and request.headers.get("HX-Request") == "true"
