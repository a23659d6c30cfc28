"""Flask plumbing every tenin HTTP app shares: RFC 9457 problems, body validation,
health/readiness/metrics endpoints and the OpenAPI 3.1 document."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raise inside a view to answer with a problem+json document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        type_: str = "about:blank",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.type_ = type_
        self.extra = dict(extra or {})


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    *,
    errors: list[dict[str, str]] | None = None,
    type_: str = "about:blank",
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """An RFC 9457 application/problem+json response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    body.update(extra or {})
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)


def validation_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic errors as [{field, message}] with dotted field paths."""
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err.get("loc", ()))
        field_name = f"{prefix}.{path}" if prefix and path else (prefix or path or "body")
        out.append({"field": field_name, "message": err.get("msg", "invalid")})
    return out


def parse_json_body(model: type[M]) -> M:
    """The request body validated against `model`, or a 400/415/422 problem naming the field."""
    if not request.is_json:
        raise ProblemError(415, "Unsupported Media Type", "send application/json")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise ProblemError(
            400,
            "Malformed JSON",
            f"the body is not valid JSON: {exc.args[0]}",
            errors=[{"field": "body", "message": "not valid JSON"}],
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProblemError(
            422,
            "Validation failed",
            "the request body does not match the schema",
            errors=validation_errors(exc),
        ) from None


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as problem+json; no stack trace reaches a client."""

    @app.errorhandler(ProblemError)
    def _problem(exc: ProblemError) -> Response:
        return problem_response(
            exc.status, exc.title, exc.detail, errors=exc.errors, type_=exc.type_, extra=exc.extra
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return problem_response(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled_request_error", path=request.path, method=request.method)
        return problem_response(500, "Internal Server Error", "an unexpected error occurred")


# --- operations endpoints ---------------------------------------------------------------


def ops_blueprint(readiness_checks: Mapping[str, Callable[[], bool]]) -> Blueprint:
    """/healthz (process up), /readyz (dependencies reachable) and /metrics."""
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

    return bp


# --- OpenAPI ----------------------------------------------------------------------------


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    status: int = 200
    secured: bool = True
    parameters: list[dict[str, Any]] = field(default_factory=list)
    content_type: str = "application/json"


def openapi_document(title: str, version: str, operations: list[Operation]) -> dict[str, Any]:
    """An OpenAPI 3.1 document generated from the same pydantic models that validate."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, Any] = {}
    for op in operations:
        entry: dict[str, Any] = {"summary": op.summary, "parameters": op.parameters}
        if op.request_model is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(op.request_model)}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if op.response_model is not None:
            ok["content"] = {op.content_type: {"schema": ref(op.response_model)}}
        entry["responses"] = {
            str(op.status): ok,
            "default": {
                "description": "an RFC 9457 problem",
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        }
        entry["security"] = [{"bearer": []}] if op.secured else []
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    schemas["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def base_app(name: str, max_request_bytes: int) -> Flask:
    """A Flask app with the size limit and error handlers every tenin app has."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    return app


def current_extension(name: str) -> Any:
    """An object the app factory stored in `app.extensions`."""
    return current_app.extensions[name]
