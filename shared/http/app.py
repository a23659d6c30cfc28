"""The one Flask app shape every tenin service has."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask import Blueprint, Flask, Response

from shared.http.openapi import Operation, openapi_document
from shared.http.ops import OPS_OPERATIONS, MetricsAccess, ReadinessCheck, ops_blueprint
from shared.http.problems import register_error_handlers

# The only HTML tenin serves is the campaign report: inline <style>, charts as data: PNGs,
# no script, no form, never framed (docs/interfaces.md § Conventions, security headers).
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def service_app(
    name: str,
    *,
    title: str,
    max_request_bytes: int,
    blueprints: Sequence[Blueprint],
    operations: Sequence[Operation],
    readiness: Mapping[str, ReadinessCheck],
    metrics_access: MetricsAccess | None = None,
    version: str = "1.0.0",
) -> Flask:
    """A service's Flask app: size limit, problem+json errors, security headers, its
    blueprints, ops endpoints.

    `operations` documents the blueprints' routes; the ops endpoints add their own, so
    /openapi.json always lists every route the app serves. `metrics_access` says whether
    a request may read /metrics on this (public) port; without it, /metrics is 404.
    """
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it; the base class does not
    register_error_handlers(app)
    app.after_request(add_security_headers)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    document = openapi_document(title, version, [*operations, *OPS_OPERATIONS])
    app.register_blueprint(ops_blueprint(readiness, document, metrics_access))
    return app


def add_security_headers(response: Response) -> Response:
    """nosniff on every response; a Content-Security-Policy on HTML."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_CONTENT_SECURITY_POLICY)
    return response
