"""RFC 9457 problem documents: how every tenin HTTP error leaves the process."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import structlog
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

FieldErrors = list[dict[str, str]]


class ProblemError(Exception):
    """Raise inside a view to answer with a problem+json document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: FieldErrors | None = None,
        type_: str = "about:blank",
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.type_ = type_
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def field_problem(
    status: int, title: str, detail: str, *, field: str, message: str
) -> ProblemError:
    """A problem about one named field (or header, or parameter) of the request."""
    return ProblemError(status, title, detail, errors=[{"field": field, "message": message}])


def too_many_requests(retry_after_s: float, detail: str) -> ProblemError:
    """429 with `Retry-After` in whole seconds, at least 1 (docs/interfaces.md § Rate limits)."""
    seconds = max(1, math.ceil(retry_after_s))
    return ProblemError(
        429,
        "Too Many Requests",
        detail,
        extra={"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def problem_response(problem: ProblemError) -> Response:
    """The RFC 9457 application/problem+json response of a problem."""
    body: dict[str, Any] = {
        "type": problem.type_,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    body.update(problem.extra)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=problem.status,
        mimetype=PROBLEM_JSON,
        headers=problem.headers,
    )


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as problem+json; no stack trace reaches a client."""

    @app.errorhandler(ProblemError)
    def _problem(exc: ProblemError) -> Response:
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        # Keeps werkzeug's own headers (a 405's `Allow`, RFC 9110 § 15.5.6), not its HTML type.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return problem_response(
            ProblemError(exc.code or 500, exc.name, exc.description or "", headers=headers)
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled_request_error", path=request.path, method=request.method)
        return problem_response(
            ProblemError(500, "Internal Server Error", "an unexpected error occurred")
        )
