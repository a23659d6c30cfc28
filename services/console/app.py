"""The marketer console: a fourth HTTP process of server-rendered pages over the other
services' APIs (docs/interfaces.md § Marketer console, docs/console.md).

`create_app(config)` wires everything; nothing connects at import time. No database and
no Kafka: every figure comes from the campaign engine and the redemption tracker over HTTP.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import structlog
from flask import Flask, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from services.console import i18n
from services.console.api_client import ApiClient, ApiProblem, ApiUnavailable
from services.console.auth import auth_blueprint, require_sign_in
from services.console.config import ConsoleConfig
from services.console.pages import campaigns, detail, insights, reports
from services.console.sessions import MemoryStore, RedisStore, ServerSessionInterface, SessionStore
from services.console.web import Console
from shared.ratelimit import Bucket, RateLimiter

log = structlog.get_logger(__name__)

# Scripts and styles only from the console itself (htmx and console.css, both vendored in
# static/): no inline script, no inline style, no framing, forms post only back here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(
    config: ConsoleConfig | None = None,
    *,
    store: SessionStore | None = None,
    limiter: RateLimiter | None = None,
    api: ApiClient | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """The console app; tests pass a config, a session store, a limiter, an API client
    (a fake one in unit tests) and a clock."""
    if config is None:
        from shared.config import Settings
        from shared.logging import configure_logging

        settings = Settings.from_env(service="console")
        configure_logging("console", settings.log_level, settings.log_json)
        config = ConsoleConfig.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session it is kept in
        WTF_CSRF_SSL_STRICT=False,  # SameSite=Lax and the token do the work; proxies vary
        MAX_CONTENT_LENGTH=256 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if config.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]  # the documented way to install it
    app.session_interface = ServerSessionInterface(
        store or _store(config),
        config.idle_seconds,
        lambda req: config.https or req.is_secure,
        clock,
    )
    app.before_request(_language)  # first: a CSRF refusal page speaks the page's language too
    CSRFProtect(app)
    app.extensions["console"] = Console(
        config=config,
        api=api
        or ApiClient(
            config.campaign_engine_url, config.redemption_tracker_url, config.api_timeout_s
        ),
        limiter=limiter or _limiter(config),
        sign_in_bucket=Bucket(
            "console_sign_in", config.sign_in_rate_per_s, config.sign_in_burst, fail_open=False
        ),
    )
    app.before_request(require_sign_in)
    app.after_request(_security_headers)
    app.context_processor(_template_helpers)
    for blueprint in (auth_blueprint(), campaigns.blueprint(), detail.blueprint()):
        app.register_blueprint(blueprint)
    app.register_blueprint(insights.blueprint())
    app.register_blueprint(reports.blueprint())
    app.add_url_rule("/healthz", "healthz", lambda: jsonify(status="ok"))
    _register_errors(app)
    return app


def _store(config: ConsoleConfig) -> SessionStore:
    if not config.redis_url:
        return MemoryStore()
    from shared.redis_client import make_redis

    return RedisStore(make_redis(config.redis_url), config.namespace)


def _limiter(config: ConsoleConfig) -> RateLimiter:
    from shared.ratelimit import rate_limiter

    return rate_limiter(config.redis_url, config.namespace)


def _language() -> None:
    g.lang = i18n.choose_language(request)


def _template_helpers() -> dict[str, Any]:
    from flask import current_app

    lang: str = getattr(g, "lang", None) or i18n.choose_language(request)
    zone = current_app.extensions["console"].config.zone
    return {
        "_": lambda text, **kw: i18n.translate(text, lang).format(**kw),
        "lang": lang,
        "yen": lambda v: i18n.yen(v, lang),
        "num": lambda v, digits=0: i18n.number(v, lang, digits),
        "when": lambda v: i18n.when(v, lang, zone),
        "poll_seconds": current_app.extensions["console"].config.poll_seconds,
    }


def _security_headers(response: Response) -> Response:
    """docs/console.md § Security model: CSP, no framing, no sniffing, no referrer leaks."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")  # pages hold a marketer's figures
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def _register_errors(app: Flask) -> None:
    def page(status: int, title: str, detail: str) -> tuple[str, int]:
        return render_template("error.html", title=title, detail=detail), status

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError) -> tuple[str, int]:
        return page(400, "Request refused", f"CSRF: {exc.description}")

    @app.errorhandler(ApiUnavailable)
    def unavailable(exc: ApiUnavailable) -> tuple[str, int]:
        return page(502, "A service did not answer", f"{exc.service}")

    @app.errorhandler(ApiProblem)
    def refused(exc: ApiProblem) -> tuple[str, int]:
        # An API refusal a page did not place by a field: its words, never a trace.
        status = exc.status if 400 <= exc.status < 500 else 502
        return page(status, exc.title, exc.detail)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        title = "Page not found" if exc.code == 404 else str(exc.name)
        return page(exc.code or 500, title, "")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str, int]:
        # The traceback without its frames' variables: those hold the session, and so the key.
        trace = "".join(traceback.format_exception(exc))
        log.error(
            "console_unexpected_error", path=request.path, error=type(exc).__name__, trace=trace
        )
        return page(500, "Something went wrong", "")
