"""The operations endpoints every service serves: /healthz, /readyz, /metrics, /openapi.json.

/readyz answers from cached, time-boxed probes (shared/http/probes.py). /metrics is for
operators, not the public: it answers 404 unless `metrics_access` lets the request in (an
admin key; docs/interfaces.md § Operator interface); scrapers use the internal metrics
port that `tenin serve --metrics-port` opens instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from shared.http.openapi import Operation
from shared.http.probes import Probes, ReadinessCheck
from shared.http.problems import ProblemError

MetricsAccess = Callable[[], bool]

OPS_OPERATIONS = (
    Operation("GET", "/healthz", "Process up", secured=False),
    Operation(
        "GET", "/readyz", "Dependencies reachable (see the checks in the body)", secured=False
    ),
    Operation(
        "GET",
        "/metrics",
        "Prometheus metrics (admin key; 404 otherwise)",
        secured=True,
        content_type="text/plain",
    ),
)


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: under gunicorn, every worker's files aggregated."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


def ops_blueprint(
    readiness_checks: Mapping[str, ReadinessCheck],
    openapi: Mapping[str, Any],
    metrics_access: MetricsAccess | None = None,
) -> Blueprint:
    """/healthz (process up), /readyz (dependencies reachable), /metrics and /openapi.json."""
    bp = Blueprint("ops", __name__)
    probes = Probes(readiness_checks)

    @bp.get("/healthz")
    def healthz() -> Response:
        return Response(json.dumps({"status": "ok"}), mimetype="application/json")

    @bp.get("/readyz")
    def readyz() -> Response:
        results = probes.results()
        ok = all(results.values())
        body = {"status": "ready" if ok else "not_ready", "checks": results}
        return Response(json.dumps(body), status=200 if ok else 503, mimetype="application/json")

    @bp.get("/metrics")
    def metrics() -> Response:
        if metrics_access is None or not metrics_access():
            # 404, not 401: the public port does not advertise that metrics exist.
            raise ProblemError(404, "Not Found", "no such resource")
        return Response(generate_latest(metrics_registry()), mimetype=CONTENT_TYPE_LATEST)

    @bp.get("/openapi.json")
    def openapi_json() -> Response:
        return jsonify(openapi)

    return bp
