"""The one Flask app shape every tenin service has."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask import Blueprint, Flask

from shared.http.openapi import Operation, openapi_document
from shared.http.ops import OPS_OPERATIONS, ReadinessCheck, ops_blueprint
from shared.http.problems import register_error_handlers


def service_app(
    name: str,
    *,
    title: str,
    max_request_bytes: int,
    blueprints: Sequence[Blueprint],
    operations: Sequence[Operation],
    readiness: Mapping[str, ReadinessCheck],
    version: str = "1.0.0",
) -> Flask:
    """A service's Flask app: size limit, problem+json errors, its blueprints, ops endpoints.

    `operations` documents the blueprints' routes; the ops endpoints add their own, so
    /openapi.json always lists every route the app serves.
    """
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it; the base class does not
    register_error_handlers(app)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    document = openapi_document(title, version, [*operations, *OPS_OPERATIONS])
    app.register_blueprint(ops_blueprint(readiness, document))
    return app
