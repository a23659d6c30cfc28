"""The redemption tracker's HTTP app: the POS feed (pos/api.py) and reports (reports/api.py).

`/readyz` checks the database only, a deliberate deviation from the other services: POS
tills must keep working while Kafka is down (their events wait in the outbox, and the
worker's relay reaches Kafka later).
"""

from __future__ import annotations

from flask import Flask

from services.redemption_tracker.bootstrap import SERVICE, Tracker, bootstrap, tune_gc
from services.redemption_tracker.pos.api import OPERATIONS as POS_OPERATIONS
from services.redemption_tracker.pos.api import pos_blueprint
from services.redemption_tracker.reports.api import OPERATIONS as REPORT_OPERATIONS
from services.redemption_tracker.reports.api import reports_blueprint
from shared.admin_access import admin_key_given
from shared.auth import install_rate_limits
from shared.config import Settings, require_secrets
from shared.http import service_app
from shared.logging import configure_logging
from shared.ratelimit import rate_limiter
from shared.readiness import readiness_checks

TITLE = "tenin redemption tracker"
VERSION = "1.0.0"


def create_app(settings: Settings | None = None, *, tracker: Tracker | None = None) -> Flask:
    """The application factory: nothing connects until a request needs it."""
    if settings is None and tracker is None:  # a served process (`tenin serve`)
        settings = require_secrets(Settings.from_env(service=SERVICE))
        configure_logging(SERVICE, settings.log_level, settings.log_json)
        tune_gc()
    tracker = tracker or bootstrap(settings)
    app = service_app(
        SERVICE,
        title=TITLE,
        version=VERSION,
        max_request_bytes=tracker.settings.max_request_bytes,
        blueprints=[pos_blueprint(tracker), reports_blueprint(tracker)],
        operations=[*POS_OPERATIONS, *REPORT_OPERATIONS],
        readiness=readiness_checks(database=tracker.engine),
        metrics_access=admin_key_given(tracker.sessions, tracker.api_key_secrets),
    )
    settings = tracker.settings
    install_rate_limits(app, rate_limiter(settings.redis_url, settings.topic_namespace))
    return app
