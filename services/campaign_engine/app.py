"""The campaign_engine HTTP app: the marketer campaign API, ops endpoints and OpenAPI."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, jsonify

from services.campaign_engine.api import OPERATIONS
from services.campaign_engine.api import bp as campaigns
from services.campaign_engine.bootstrap import SERVICE
from shared.bus import KafkaBroker, broker_from_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.db import ping as db_ping
from shared.http import base_app, openapi_document, ops_blueprint
from shared.logging import configure_logging
from shared.redis_client import make_redis
from shared.redis_client import ping as redis_ping


def readiness(settings: Settings, db_ping_: Callable[[], bool]) -> dict[str, Callable[[], bool]]:
    """Checks behind /readyz: the database, Redis and Kafka answer."""
    client = make_redis(settings.redis_url) if settings.redis_url else None

    def kafka() -> bool:
        if not settings.kafka_bootstrap_servers:
            return False
        broker = broker_from_settings(settings)
        return bool(broker.ping()) if isinstance(broker, KafkaBroker) else True

    return {
        "database": db_ping_,
        "redis": lambda: client is not None and redis_ping(client),
        "kafka": kafka,
    }


def create_app(settings: Settings | None = None) -> Flask:
    """The application factory; nothing connects until a request needs it."""
    if settings is None:
        settings = Settings.from_env(service=SERVICE)
        configure_logging(SERVICE, settings.log_level, settings.log_json)
    settings = settings.with_service(SERVICE)
    db = make_engine(settings.effective_database_url, pool_size=5)
    app = base_app(SERVICE, settings.max_request_bytes)
    app.extensions["settings"] = settings
    app.extensions["sessions"] = make_session_factory(db)
    app.register_blueprint(campaigns)
    app.register_blueprint(ops_blueprint(readiness(settings, lambda: db_ping(db))))
    document = openapi_document("tenin campaign_engine", "1.0.0", OPERATIONS)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(document)

    return app
