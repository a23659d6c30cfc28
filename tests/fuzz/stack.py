"""The three HTTP apps, live on local ports, for the fuzzer (docs/architecture.md § Fuzzing).

Each app is the one `tenin serve` runs (its `create_app`), served by a threaded
werkzeug server in this process, on a fresh migrated PostgreSQL database, the real
Redis and Kafka, and a recording LINE server. Secrets are random per run, and keys of
every role are created directly in the database.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from shared.auth import create_key
from shared.bus import broker_from_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events.topics import TOPICS
from tenin.line_recorder import LineRecorder
from tests.fuzz.hooks import FUZZ_STORE
from tests.support.databases import create_database, drop_database, migrate
from tests.support.kafka_tools import delete_namespace

# Generous buckets: the fuzzer is one very fast client, and 429s would hide the routes.
NO_PRACTICAL_LIMIT = "100000/100000"
RATE_LIMIT_VARIABLES = (
    "TENIN_RATE_LIMIT_KEY_MARKETER",
    "TENIN_RATE_LIMIT_KEY_POS",
    "TENIN_RATE_LIMIT_KEY_MEMBERS",
    "TENIN_RATE_LIMIT_KEY_ADMIN",
    "TENIN_RATE_LIMIT_STORE",
    "TENIN_RATE_LIMIT_LINE_USER",
    "TENIN_RATE_LIMIT_LINK",
)


@dataclass(frozen=True)
class LiveStack:
    """Where the apps listen, and the credentials the fuzzer sends."""

    urls: Mapping[str, str]
    keys: Mapping[str, str]
    line_channel_secret: str


def _app_factories() -> dict[str, Callable[[Settings], Flask]]:
    from services.campaign_engine.app import create_app as campaign_engine
    from services.chat_agent.app import create_app as chat_agent
    from services.redemption_tracker.app import create_app as redemption_tracker

    return {
        "campaign_engine": campaign_engine,
        "chat_agent": chat_agent,
        "redemption_tracker": redemption_tracker,
    }


def fuzz_environment(database_url: str, line_base_url: str, data_dir: Path) -> dict[str, str]:
    """The process environment plus this run's database, namespace, secrets and limits."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "TENIN_TOPIC_NAMESPACE": f"fuzz-{secrets.token_hex(4)}.",
            "TENIN_SECRET_KEY": secrets.token_urlsafe(48),
            "LINE_CHANNEL_SECRET": secrets.token_hex(32),
            "LINE_CHANNEL_ACCESS_TOKEN": secrets.token_urlsafe(48),
            "MESSAGING_API_BASE": line_base_url,
            "TENIN_DATA_DIR": str(data_dir),
            "TENIN_LOG_LEVEL": "WARNING",
        }
    )
    env.update({name: NO_PRACTICAL_LIMIT for name in RATE_LIMIT_VARIABLES})
    return env


def _create_keys(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings.effective_database_url, pool_size=1)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return {
                role: create_key(
                    session, settings.secret_key, role, FUZZ_STORE if role == "pos" else None
                )
                for role in ("admin", "marketer", "pos", "members")
            }
    finally:
        engine.dispose()


@contextmanager
def _serving(app: Flask) -> Iterator[str]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def live_stack(server_database_url: str, data_dir: Path) -> Iterator[LiveStack]:
    """Start the three apps on a fresh database; stop them and drop it afterwards."""
    database_url = create_database(server_database_url, prefix="tenin_fuzz")
    try:
        migrate(database_url)
        with ExitStack() as stack:
            line = stack.enter_context(LineRecorder())
            env = fuzz_environment(database_url, line.base_url, data_dir)
            settings = Settings.from_env(env)
            line.token = settings.line_channel_access_token
            if settings.kafka_bootstrap_servers:  # this run's topics go with it
                servers, namespace = settings.kafka_bootstrap_servers, settings.topic_namespace
                stack.callback(delete_namespace, servers, namespace)
            # The workers create the topics in a deployment; the webhook publishes to them.
            broker_from_settings(settings).ensure_topics(TOPICS)
            # Limits and other settings the apps read from the environment themselves.
            os.environ.update({name: env[name] for name in RATE_LIMIT_VARIABLES})
            urls = {
                name: stack.enter_context(_serving(factory(settings.with_service(name))))
                for name, factory in _app_factories().items()
            }
            yield LiveStack(urls, _create_keys(settings), settings.line_channel_secret)
    finally:
        drop_database(server_database_url, database_url)
