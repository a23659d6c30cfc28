"""The OpenAPI 3.1 document, generated from the same pydantic models that validate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.http.problems import PROBLEM_JSON


@dataclass(frozen=True)
class Operation:
    """One route as /openapi.json documents it."""

    method: str
    path: str
    summary: str
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    status: int = 200
    secured: bool = True
    parameters: list[dict[str, Any]] = field(default_factory=list)
    content_type: str = "application/json"
    body_required: bool = True  # False: the request body may be left out entirely
    # Other success answers of the same route, e.g. a dry run's 200 beside a 202.
    other_successes: dict[int, type[BaseModel]] = field(default_factory=dict)


def path_parameter(name: str) -> dict[str, Any]:
    """A required string parameter in the path."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query_parameter(name: str, *, required: bool = False, **schema: Any) -> dict[str, Any]:
    """A query-string parameter (a string unless `schema` says otherwise)."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema or {"type": "string"},
    }


RETRY_AFTER_HEADER: dict[str, Any] = {
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
    "description": "whole seconds until the bucket has a token again",
}

PROBLEM_SCHEMA: dict[str, Any] = {
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


def openapi_document(title: str, version: str, operations: Sequence[Operation]) -> dict[str, Any]:
    """An OpenAPI 3.1 document for `operations`."""
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
                "required": op.body_required,
                "content": {"application/json": {"schema": ref(op.request_model)}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if op.response_model is not None:
            ok["content"] = {op.content_type: {"schema": ref(op.response_model)}}
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        entry["responses"] = {
            str(op.status): ok,
            **{
                str(status): {
                    "description": "success",
                    "content": {op.content_type: {"schema": ref(model)}},
                }
                for status, model in op.other_successes.items()
            },
            "default": {"description": "an RFC 9457 problem", "content": problem},
        }
        if op.secured:  # every keyed call takes a token (docs/interfaces.md § Rate limits)
            entry["responses"]["429"] = {
                "description": "a rate limit is spent; retry after `Retry-After` seconds",
                "headers": {"Retry-After": RETRY_AFTER_HEADER},
                "content": problem,
            }
        entry["security"] = [{"bearer": []}] if op.secured else []
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    schemas["Problem"] = PROBLEM_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
