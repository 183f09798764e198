"""The OpenAPI 3.1 document, generated from the views' `operation` metadata and their schemas."""

from __future__ import annotations

import re
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app
from flask import jsonify

from audittrail.api import bp
from audittrail.errors import STATUS_BY_CODE
from audittrail.schemas import ErrorSchema
from audittrail.schemas import StrictSchema
from audittrail.schemas.custom_fields import NO_NUL_PATTERN
from audittrail.schemas.custom_fields import JsonObject
from audittrail.schemas.custom_fields import QueryInteger
from audittrail.schemas.custom_fields import RFC3339DateTime
from audittrail.schemas.custom_fields import StrictInteger
from audittrail.schemas.custom_fields import Text
from audittrail.schemas.custom_fields import UTCDateTime
from audittrail.schemas.custom_fields import not_blank_pattern
from audittrail.schemas.custom_fields import printable
from audittrail.schemas.custom_fields import printable_pattern

_PATH_PARAMETER = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
_SECURITY = {
    "any": [{"bearer": []}, {"apiKey": []}, {"cookie": []}],
    "jwt": [{"bearer": []}, {"cookie": []}],
    "none": [],
}


_DESCRIPTION = (
    "Audited control plane for operational changes proposed by automation and AI agents.\n\n"
    "No string in a request (body, nested JSON objects included, query or header) may contain U+0000 (NUL): "
    "it answers 422 `validation_error`. Unknown query parameters answer 422 too. A JSON object that gives the "
    "same key twice answers 400 `malformed_json`. Patterns are ECMA-262 regular expressions read with the "
    "`u` flag (code points)."
)


NO_NUL_SCHEMA = "NoNulAnywhere"
# No type of its own: each keyword applies to one JSON type only, so it constrains the strings and
# object keys at every depth of a payload or outcome, and lets everything else (null included) be.
_NO_NUL_ANYWHERE = {
    "description": "A JSON value none of whose strings or object keys, at any depth, holds U+0000.",
    "pattern": NO_NUL_PATTERN,
    "propertyNames": {"pattern": NO_NUL_PATTERN},
    "additionalProperties": {"$ref": f"#/components/schemas/{NO_NUL_SCHEMA}"},
    "items": {"$ref": f"#/components/schemas/{NO_NUL_SCHEMA}"},
}


def _string_patterns(self, field, ret, **kwargs) -> dict:
    """A request's string fields state the server's rules as patterns: "not blank" and no NUL; its JSON
    objects (payload, outcome) refer to the NUL rule for every string they hold.

    Response schemas are left alone: what the server sends was checked when it came in.
    """
    if not isinstance(field.root, StrictSchema):
        return {}
    if isinstance(field, JsonObject):
        return {"$ref": f"#/components/schemas/{NO_NUL_SCHEMA}"}
    types = ret.get("type")
    is_string = "string" in (types if isinstance(types, list) else [types])
    if not is_string or "pattern" in ret or "enum" in ret:
        return {}
    if isinstance(field, Text):
        return {"pattern": not_blank_pattern()}
    if printable in field.validators:
        return {"pattern": printable_pattern()}
    return {"pattern": NO_NUL_PATTERN}


def build_spec(app) -> dict:
    """Walk the app's routes and document every view that carries `operation` metadata."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="AuditTrail Deployment Actions",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": _DESCRIPTION},
    )
    plugin.map_to_openapi_type(UTCDateTime, "string", "date-time")
    plugin.map_to_openapi_type(StrictInteger, "integer", None)
    plugin.map_to_openapi_type(QueryInteger, "integer", None)
    plugin.map_to_openapi_type(JsonObject, "object", None)
    plugin.map_to_openapi_type(Text, "string", None)
    plugin.map_to_openapi_type(RFC3339DateTime, "string", "date-time")
    plugin.converter.add_attribute_function(_string_patterns)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or sk-at-…"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "access_token_cookie"})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema(NO_NUL_SCHEMA, component=_NO_NUL_ANYWHERE)

    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "openapi", None)
        if meta is None:
            continue
        path = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(meta, rule)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    # The lowest and default TTL are settings (tests lower the minimum): document this app's values.
    ttl = document["components"]["schemas"]["ActionPropose"]["properties"]["ttl_seconds"]
    ttl["minimum"] = app.config["AUDITTRAIL_TTL_MIN_SECONDS"]
    ttl["default"] = app.config["AUDITTRAIL_DEFAULT_TTL_SECONDS"]
    return document


def _operation(meta, rule) -> dict:
    operation: dict = {
        "summary": meta.summary,
        "operationId": rule.endpoint.replace(".", "_"),
        "tags": meta.tags,
        "security": _SECURITY[meta.auth],
        "responses": {},
        "parameters": [],
    }
    for name in rule.arguments:
        operation["parameters"].append({"in": "path", "name": name, "required": True, "schema": {"type": "string"}})
    if meta.query is not None:
        operation["parameters"].append({"in": "query", "schema": meta.query})
    for name, header in meta.headers.items():
        operation["parameters"].append({"in": "header", "name": name, **header})
    if meta.body is not None:
        limit = meta.max_body_bytes or current_app.config["MAX_CONTENT_LENGTH"]
        operation["requestBody"] = {
            "required": not meta.body_optional,
            "description": f"At most {limit // 1024} KiB (else 413 `payload_too_large`).",
            "content": {"application/json": {"schema": meta.body}},
        }
    for status, schema in meta.responses.items():
        response: dict = {"description": "Success", "headers": _response_headers(meta)}
        if schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        if status in meta.response_content:
            response.setdefault("content", {}).update(meta.response_content[status])
        response["headers"].update(meta.response_headers.get(status, {}))
        if meta.carries_secret:
            response["headers"]["Cache-Control"] = {
                "required": True,
                "schema": {"type": "string", "const": "no-store"},
                "description": "The answer holds a secret: no cache may keep it.",
            }
        operation["responses"][str(status)] = response
    codes = list(meta.errors)
    if meta.auth != "none" and "unauthorized" not in codes:
        codes.append("unauthorized")
    if meta.body is not None or meta.query is not None:
        codes += ["validation_error"]
    if meta.body is not None:
        codes += ["malformed_json", "payload_too_large"]
    codes += ["service_unavailable"]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(int(STATUS_BY_CODE[code]), []).append(code)
    for status, status_codes in sorted(by_status.items()):
        response = {
            "description": "Error: " + ", ".join(f"`{code}`" for code in status_codes),
            "content": {"application/json": {"schema": "Error"}},
            "headers": _response_headers(meta),
        }
        if status == 429:
            response["headers"]["Retry-After"] = {
                "required": True,
                # flask-limiter rewrites it from the window's end, truncated: 0 in the window's last second.
                "schema": {"type": "integer", "minimum": 0},
                "description": "Seconds to wait before the bucket has room again.",
            }
        operation["responses"][str(status)] = response
    return operation


_REQUEST_ID_HEADER = {
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    "description": "The X-Request-ID sent (1–128 of A-Z a-z 0-9 . _ : -), else a generated one; audit events "
    "record it.",
}
_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Size of the caller's bucket."},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in this window."},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "When the window ends (Unix time)."},
}


def _response_headers(meta) -> dict:
    headers = {"X-Request-ID": dict(_REQUEST_ID_HEADER)}
    if "rate_limited" in meta.errors:
        headers.update({name: dict(header) for name, header in _RATE_LIMIT_HEADERS.items()})
    return headers


@lru_cache(maxsize=4)
def _cached_spec(app_id: int, app) -> dict:
    return build_spec(app)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document of this API."""
    app = current_app._get_current_object()
    return jsonify(_cached_spec(id(app), app))
