"""The OpenAPI document as the API really answers: every error is a problem document.

FastAPI documents a route's success response and a 422 ``HTTPValidationError`` body; the
app answers every error (401, 403, 404, 409, 413, 422, 429 …) with an RFC 9457 problem
document instead (core/web.py ``problem``). A client generated from the schema, and the
schema-conformance fuzzing (tests/contracts/test_api_fuzz_roles.py), need the real
answers, so the generated document is rewritten once: a ``Problem`` component, and the
error statuses every guarded route can give pointing at it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from guanxi.core.web import PROBLEM

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem document; ``errors`` names each invalid field.",
    "required": ["type", "title", "status", "code", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "loc", "code", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    # Some problems carry extra members (e.g. a conflict's existing record id).
    "additionalProperties": True,
}

# Every status the error handlers produce for a route of the API: 400 a malformed request,
# 401 no or a bad credential, 403 a missing permission, 404 unknown or out-of-scope records
# (and unknown paths), 409 a conflicting write, 413 a body over the limit, 422 invalid
# input, 429 throttling. Which of them one route can give depends on its body and on its
# services, so all are documented on every route: a client handles each the same way.
ERROR_STATUSES: dict[str, str] = {
    "400": "Bad request",
    "401": "Not signed in, or the token is invalid or expired",
    "403": "The signed-in user lacks the permission",
    "404": "No such record, or not visible to the user",
    "409": "The write conflicts with existing data",
    "413": "The request body is too large",
    "422": "Invalid input; ``errors`` names each field",
    "429": "Too many requests",
}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# A clock time without an offset (quiet hours, a care rule's send time), as pydantic writes
# ``datetime.time``: JSON Schema's ``time`` format is RFC 3339's full-time, which requires
# the offset, so a validator rejects every "21:00:00" the API really sends.
LOCAL_TIME_PATTERN = r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$"


def _portable(node: Any) -> None:
    """Rewrite, in place, the schema forms validators read otherwise than pydantic meant:
    a naive ``time`` becomes a pattern, and a tuple of one repeated item type (pydantic's
    ``prefixItems`` for ``tuple[int, int, int]``) the same array with ``items``."""
    if isinstance(node, list):
        for item in node:
            _portable(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and node.get("format") == "time":
        del node["format"]
        node["pattern"] = LOCAL_TIME_PATTERN
    prefix = node.get("prefixItems")
    if isinstance(prefix, list) and prefix and "items" not in node:
        if all(item == prefix[0] for item in prefix):
            node["items"] = node.pop("prefixItems")[0]
    for value in node.values():
        _portable(value)


def with_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the Problem schema and the error statuses on every operation
    (the generated 422 ``HTTPValidationError`` replaced: that body is never sent)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    _portable(components)
    _portable(document.get("paths", {}))
    components["Problem"] = PROBLEM_SCHEMA
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, description in ERROR_STATUSES.items():
                responses[status] = _problem_response(description)
    # FastAPI's validation schemas, unless something else still refers to them.
    for unused in ("HTTPValidationError", "ValidationError"):
        removed = components.pop(unused, None)
        if removed is not None and f'"#/components/schemas/{unused}"' in json.dumps(document):
            components[unused] = removed
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_problem_responses(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
