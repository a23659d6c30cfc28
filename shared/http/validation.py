"""Request validation against pydantic models, with errors that name the field.

One formatter for every service: a field path is dotted, list positions included
(`transactions.3.items.0.qty`), so a client sees the same name for the same mistake
whichever service it talks to.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from shared.http.problems import FieldErrors, ProblemError, field_problem

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """A pydantic error location as a dotted path under `prefix` ("body" when empty)."""
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc]
    return ".".join(parts) or "body"


def validation_errors(exc: ValidationError, prefix: str = "") -> FieldErrors:
    """Pydantic errors as [{field, message}] with dotted field paths."""
    return [
        {
            "field": field_path(tuple(err.get("loc", ())), prefix),
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors(include_url=False)
    ]


def invalid(detail: str, errors: FieldErrors) -> ProblemError:
    """The 422 problem for input that does not match its schema."""
    return ProblemError(422, "Validation failed", detail, errors=errors)


def json_from(raw: bytes) -> Any:
    """The JSON document in a request body, or a 400 problem naming the body."""
    try:
        return json.loads(raw or b"null")
    except RecursionError:
        # `[` x 100000 exhausts the decoder's stack: the client's fault, not a 500.
        raise field_problem(
            400,
            "Malformed JSON",
            "the body nests arrays or objects too deeply",
            field="body",
            message="nested too deeply",
        ) from None
    except ValueError as exc:
        raise field_problem(
            400,
            "Malformed JSON",
            f"the body is not valid JSON: {exc.args[0]}",
            field="body",
            message="not valid JSON",
        ) from None


def parse_json_body(model: type[M]) -> M:
    """The request body validated against `model`, or a 400/415/422 problem naming the field."""
    if not request.is_json:
        raise ProblemError(415, "Unsupported Media Type", "send application/json")
    data = json_from(request.get_data(cache=True))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(
            "the request body does not match the schema", validation_errors(exc)
        ) from None


def parse_query(model: type[M]) -> M:
    """The query string validated against `model`, or a 422 problem naming the parameter."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise invalid("the query parameters are not valid", validation_errors(exc)) from None
