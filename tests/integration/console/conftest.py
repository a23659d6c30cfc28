"""The console against the real campaign engine and redemption tracker APIs.

Both apps run in this process on real sockets (werkzeug, threaded) over the session's
PostgreSQL; the console reaches them only over HTTP, as it does when served. Sessions and
sign-in limits live in the real Redis under a namespace of the test's own.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from services.console.app import create_app
from services.console.config import ConsoleConfig
from services.console.sessions import RedisStore
from shared.auth import create_key
from shared.config import Settings
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.ratelimit import RateLimiter
from shared.redis_client import make_redis

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Apis:
    """The two APIs the console talks to, and keys of every role."""

    engine_url: str
    tracker_url: str
    settings: Settings
    keys: dict[str, str]


def _serve(app: Flask) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="session")
def apis(real_settings: Settings, pg_url: str) -> Iterator[Apis]:
    from services.campaign_engine.app import create_app as engine_app
    from services.redemption_tracker.app import create_app as tracker_app

    settings = replace(real_settings, database_url=pg_url)
    sessions = make_session_factory(make_engine(pg_url, pool_size=1))
    with unit_of_work(sessions) as session:
        keys = {
            role: create_key(
                session, settings.secret_key, role, "S-CONSOLE" if role == "pos" else None
            )
            for role in ("marketer", "pos", "members", "admin")
        }
    engine_server, engine_url = _serve(engine_app(settings))
    tracker_server, tracker_url = _serve(tracker_app(settings))
    yield Apis(engine_url, tracker_url, settings, keys)
    engine_server.shutdown()
    tracker_server.shutdown()


class Clock:
    """A settable clock for idle expiry."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_console(apis: Apis, clock: Clock) -> Callable[..., Flask]:
    """A console app on the real APIs and Redis, each with a namespace of its own."""

    def build(**over: object) -> Flask:
        redis_url = str(apis.settings.redis_url)
        namespace = f"console-test-{uuid.uuid4().hex[:8]}"
        config = ConsoleConfig(
            campaign_engine_url=apis.engine_url,
            redemption_tracker_url=apis.tracker_url,
            secret_key=apis.settings.secret_key,
            redis_url=redis_url,
            namespace=namespace,
            idle_seconds=float(over.pop("idle_seconds", 600)),  # type: ignore[arg-type]  # test override
            sign_in_burst=int(over.pop("sign_in_burst", 100)),  # type: ignore[call-overload]  # test override
        )
        app = create_app(
            config,
            store=RedisStore(make_redis(redis_url), namespace),
            limiter=RateLimiter(make_redis(redis_url, timeout_s=0.25), namespace),
            clock=clock,
        )
        app.config["TESTING"] = True
        return app

    return build


@pytest.fixture
def console(make_console: Callable[..., Flask]) -> Flask:
    return make_console()


def csrf_of(client: FlaskClient, path: str = "/sign-in") -> str:
    """The CSRF token of the form on `path`."""
    page = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    found = CSRF.search(page)
    assert found, page[:2000]
    return found.group(1)


def sign_in(client: FlaskClient, key: str) -> None:
    token = csrf_of(client)
    answer = client.post("/sign-in", data={"key": key, "csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]


@pytest.fixture
def signed_in(console: Flask, apis: Apis) -> FlaskClient:
    """A test client signed in with the marketer key (English pages)."""
    client = console.test_client()
    client.set_cookie("console_lang", "en")
    sign_in(client, apis.keys["marketer"])
    return client
