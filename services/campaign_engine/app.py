"""The campaign_engine HTTP app: the marketer campaign API, ops endpoints and OpenAPI."""

from __future__ import annotations

from flask import Flask

from services.campaign_engine.api import OPERATIONS, campaigns_blueprint
from services.campaign_engine.bootstrap import SERVICE
from shared.bus import broker_from_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.http import service_app
from shared.logging import configure_logging
from shared.readiness import readiness_checks
from shared.redis_client import make_redis


def create_app(settings: Settings | None = None) -> Flask:
    """The application factory; nothing connects until a request needs it."""
    if settings is None:
        settings = Settings.from_env(service=SERVICE)
        configure_logging(SERVICE, settings.log_level, settings.log_json)
    settings = settings.with_service(SERVICE)
    db = make_engine(settings.effective_database_url, pool_size=5)
    sessions = make_session_factory(db)
    return service_app(
        SERVICE,
        title="tenin campaign_engine",
        max_request_bytes=settings.max_request_bytes,
        blueprints=[campaigns_blueprint(sessions, settings.secret_key)],
        operations=OPERATIONS,
        readiness=readiness_checks(
            database=db,
            redis_client=make_redis(settings.redis_url) if settings.redis_url else None,
            broker=lambda: broker_from_settings(settings),
        ),
    )
