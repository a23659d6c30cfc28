"""The operations endpoints every service serves: /healthz, /readyz, /metrics, /openapi.json."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from shared.http.openapi import Operation

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], bool]

OPS_OPERATIONS = (
    Operation("GET", "/healthz", "Process up", secured=False),
    Operation(
        "GET", "/readyz", "Dependencies reachable (see the checks in the body)", secured=False
    ),
    Operation("GET", "/metrics", "Prometheus metrics", secured=False, content_type="text/plain"),
)


def ops_blueprint(
    readiness_checks: Mapping[str, ReadinessCheck], openapi: Mapping[str, Any]
) -> Blueprint:
    """/healthz (process up), /readyz (dependencies reachable), /metrics and /openapi.json."""
    bp = Blueprint("ops", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return Response(json.dumps({"status": "ok"}), mimetype="application/json")

    @bp.get("/readyz")
    def readyz() -> Response:
        results = {}
        for name, check in readiness_checks.items():
            try:
                results[name] = bool(check())
            except Exception:
                log.exception("readiness_check_failed", check=name)
                results[name] = False
        ok = all(results.values())
        body = {"status": "ready" if ok else "not_ready", "checks": results}
        return Response(json.dumps(body), status=200 if ok else 503, mimetype="application/json")

    @bp.get("/metrics")
    def metrics() -> Response:
        registry: CollectorRegistry = DEFAULT_REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Under gunicorn each worker writes its own files; aggregate them here.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @bp.get("/openapi.json")
    def openapi_json() -> Response:
        return jsonify(openapi)

    return bp
