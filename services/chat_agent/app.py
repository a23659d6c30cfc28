"""The chat_agent HTTP app: the LINE webhook, coupon QR images, account-link nonces, ops."""

from __future__ import annotations

from flask import Flask

from services.chat_agent.bootstrap import SERVICE, WEB_POOL_SIZE, Dependencies, bootstrap
from services.chat_agent.line import qr, webhook
from services.chat_agent.linking import api
from shared.admin_access import admin_key_given
from shared.auth import install_rate_limits
from shared.config import Settings, require_secrets
from shared.http import service_app
from shared.logging import configure_logging
from shared.ratelimit import rate_limiter


def create_app(settings: Settings | None = None, *, deps: Dependencies | None = None) -> Flask:
    """The application factory; nothing connects until a request needs it."""
    if settings is None and deps is None:
        settings = require_secrets(Settings.from_env(service=SERVICE))
        configure_logging(SERVICE, settings.log_level, settings.log_json)
    deps = deps or bootstrap(settings, pool_size=WEB_POOL_SIZE)
    settings = settings or deps.settings
    app = service_app(
        SERVICE,
        title="tenin chat_agent",
        max_request_bytes=settings.max_request_bytes,
        blueprints=[
            webhook.webhook_blueprint(settings.line_channel_secret, deps.publisher),
            qr.qr_blueprint(settings.secret_keys),
            api.link_nonce_blueprint(
                deps.sessions, settings.secret_key, settings.pseudonym_key, deps.clock
            ),
        ],
        operations=[*webhook.OPERATIONS, *qr.OPERATIONS, *api.OPERATIONS],
        readiness=deps.readiness,
        metrics_access=admin_key_given(deps.sessions, settings.secret_keys),
    )
    install_rate_limits(app, rate_limiter(settings.redis_url, settings.topic_namespace))
    return app
