"""HTTP plumbing every tenin service shares: the app shape, problem+json errors, request
validation with dotted field paths, the ops endpoints and the OpenAPI document."""

from shared.http.app import service_app
from shared.http.openapi import Operation, openapi_document, path_parameter, query_parameter
from shared.http.ops import MetricsAccess, ReadinessCheck, ops_blueprint
from shared.http.probes import Probes
from shared.http.problems import (
    PROBLEM_JSON,
    FieldErrors,
    ProblemError,
    field_problem,
    problem_response,
    register_error_handlers,
)
from shared.http.validation import (
    field_path,
    invalid,
    json_from,
    parse_json_body,
    parse_query,
    validation_errors,
)

__all__ = [
    "PROBLEM_JSON",
    "FieldErrors",
    "MetricsAccess",
    "Operation",
    "Probes",
    "ProblemError",
    "ReadinessCheck",
    "field_path",
    "field_problem",
    "invalid",
    "json_from",
    "openapi_document",
    "ops_blueprint",
    "parse_json_body",
    "parse_query",
    "path_parameter",
    "problem_response",
    "query_parameter",
    "register_error_handlers",
    "service_app",
    "validation_errors",
]
