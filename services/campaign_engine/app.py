"""The campaign_engine HTTP app: the marketer campaign API, ops endpoints and OpenAPI."""

from __future__ import annotations

from flask import Flask

from services.campaign_engine.bootstrap import SERVICE, Engine, bootstrap
from services.campaign_engine.campaigns.api import OPERATIONS, campaigns_blueprint
from services.campaign_engine.drops.api import DROP_OPERATIONS, DropDeps, drops_blueprint
from services.campaign_engine.insights.api import (
    INSIGHT_OPERATIONS,
    insight_deps,
    insights_blueprint,
)
from services.campaign_engine.insights.models_api import (
    MODEL_OPERATIONS,
    ModelsDeps,
    models_blueprint,
)
from shared.admin_access import admin_key_given
from shared.auth import install_rate_limits
from shared.bus import broker_from_settings
from shared.config import Settings, require_secrets
from shared.http import service_app
from shared.logging import configure_logging
from shared.ratelimit import rate_limiter
from shared.readiness import readiness_checks

APP_POOL_SIZE = 5  # database connections for the API (the worker keeps bootstrap's 10)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    """The application factory; nothing connects until a request needs it.

    The API needs only the database; /readyz also reports Redis (when REDIS_URL is set)
    and Kafka, which the service's worker needs.
    """
    if engine is None:
        if settings is None:
            settings = require_secrets(Settings.from_env(service=SERVICE))
            configure_logging(SERVICE, settings.log_level, settings.log_json)
        engine = bootstrap(settings, pool_size=APP_POOL_SIZE)
    settings = engine.settings
    app = service_app(
        SERVICE,
        title="tenin campaign_engine",
        max_request_bytes=settings.max_request_bytes,
        blueprints=[
            campaigns_blueprint(engine.sessions, settings.secret_keys),
            insights_blueprint(insight_deps(engine)),
            models_blueprint(
                ModelsDeps(
                    engine.sessions,
                    settings.secret_keys,
                    {"propensity": settings.model_dir, "uplift": settings.uplift_dir},
                )
            ),
            drops_blueprint(
                DropDeps(
                    engine.sessions,
                    settings.secret_keys,
                    features=lambda: engine.features,
                    holdout_key=engine.holdout_key,
                )
            ),
        ],
        operations=OPERATIONS + INSIGHT_OPERATIONS + DROP_OPERATIONS + MODEL_OPERATIONS,
        readiness=readiness_checks(
            database=engine.db,
            redis_client=engine.redis if settings.redis_url else None,
            broker=lambda: broker_from_settings(settings),
        ),
        metrics_access=admin_key_given(engine.sessions, settings.secret_keys),
    )
    install_rate_limits(app, rate_limiter(settings.redis_url, settings.topic_namespace))
    return app
