"""The chat_agent HTTP app: the LINE webhook, coupon QR images, ops and OpenAPI."""

from __future__ import annotations

from flask import Flask

from services.chat_agent.bootstrap import SERVICE, WEB_POOL_SIZE, Dependencies, bootstrap
from services.chat_agent.line import qr, webhook
from shared.config import Settings
from shared.http import service_app
from shared.logging import configure_logging


def create_app(settings: Settings | None = None, *, deps: Dependencies | None = None) -> Flask:
    """The application factory; nothing connects until a request needs it."""
    if settings is None and deps is None:
        settings = Settings.from_env(service=SERVICE)
        configure_logging(SERVICE, settings.log_level, settings.log_json)
    deps = deps or bootstrap(settings, pool_size=WEB_POOL_SIZE)
    settings = settings or deps.settings
    return service_app(
        SERVICE,
        title="tenin chat_agent",
        max_request_bytes=settings.max_request_bytes,
        blueprints=[
            webhook.webhook_blueprint(settings.line_channel_secret, deps.publisher),
            qr.qr_blueprint(),
        ],
        operations=[*webhook.OPERATIONS, *qr.OPERATIONS],
        readiness=deps.readiness,
    )
